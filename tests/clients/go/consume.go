package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

// simpleAwait is how long one receive waits for messages to arrive (long polling).
const simpleAwait = 5 * time.Second

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

// filter is the subscription the --tag / --sql options ask for (all messages by default).
func filter(tag, sql string) (*rmq.FilterExpression, error) {
	switch {
	case tag != "" && sql != "":
		return nil, fmt.Errorf("--tag and --sql exclude each other")
	case sql != "":
		return rmq.NewFilterExpressionWithType(sql, rmq.SQL92), nil
	case tag != "":
		return rmq.NewFilterExpression(tag), nil
	default:
		return rmq.SUB_ALL, nil
	}
}

func millis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// describe is everything a consumer sees of a received message.
func describe(view *rmq.MessageView) map[string]any {
	keys := append([]string{}, view.GetKeys()...)
	sort.Strings(keys)
	properties := view.GetProperties()
	if properties == nil {
		properties = map[string]string{}
	}
	return map[string]any{
		"message_id":            view.GetMessageId(),
		"topic":                 view.GetTopic(),
		"body":                  base64.StdEncoding.EncodeToString(view.GetBody()),
		"tag":                   deref(view.GetTag()),
		"keys":                  keys,
		"properties":            properties,
		"delivery_attempt":      view.GetDeliveryAttempt(),
		"message_group":         deref(view.GetMessageGroup()),
		"delivery_timestamp_ms": millis(view.GetDeliveryTimestamp()),
		"born_timestamp_ms":     millis(view.GetBornTimestamp()),
		"born_host":             deref(view.GetBornHost()),
		"at_ms":                 nowMs(),
	}
}

func runSimpleConsume(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("simple-consume", flag.ContinueOnError)
	topic := fs.String("topic", "", "topic to receive from (required)")
	group := fs.String("group", "", "consumer group (required)")
	expect := fs.Int("expect", 1, "stop after this many messages")
	ack := fs.Bool("ack", false, "acknowledge each message")
	invisible := fs.Float64("invisible-s", 30, "invisible duration of received messages, seconds")
	maxWait := fs.Float64("max-wait-s", 60, "give up after this many seconds")
	batch := fs.Int("batch", 32, "messages per receive")
	tag := fs.String("tag", "", "tag expression")
	sql := fs.String("sql", "", "SQL92 expression")
	change := fs.Float64("change-invisible-s", 0, "change each message's invisible duration to this first")
	if err := parse(fs, c, args); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	if err := required("group", *group); err != nil {
		return nil, err
	}
	expression, err := filter(*tag, *sql)
	if err != nil {
		return nil, err
	}
	consumer, err := rmq.NewSimpleConsumer(c.config(*group),
		rmq.WithSimpleAwaitDuration(simpleAwait),
		rmq.WithSimpleSubscriptionExpressions(map[string]*rmq.FilterExpression{*topic: expression}))
	if err != nil {
		return nil, fmt.Errorf("cannot create the simple consumer: %w", err)
	}
	setRequestTimeout(consumer, c.requestTimeout())
	if err := consumer.Start(); err != nil {
		return nil, &startError{"simple consumer", err}
	}
	defer consumer.GracefulStop()

	received := []map[string]any{}
	ackErrors := []map[string]any{}
	receiveErrors := []map[string]any{}
	deadline := time.Now().Add(seconds(*maxWait))
	for len(received) < *expect && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		views, err := consumer.Receive(ctx, int32(*batch), seconds(*invisible))
		cancel()
		if err != nil {
			if status, ok := rmq.AsErrRpcStatus(err); ok && status.GetCode() == int32(v2.Code_MESSAGE_NOT_FOUND) {
				continue // nothing arrived while it waited
			}
			if time.Now().Before(deadline) {
				receiveErrors = append(receiveErrors, errorValue(err))
				time.Sleep(100 * time.Millisecond) // not a tight loop against a failing server
			}
			continue
		}
		for _, view := range views {
			entry := describe(view)
			if *change > 0 {
				before := *view // keeps the old receipt handle; the change replaces the view's
				if err := consumer.ChangeInvisibleDuration(view, seconds(*change)); err != nil {
					failure := errorValue(err)
					failure["message_id"] = view.GetMessageId()
					failure["op"] = "change_invisible_duration"
					ackErrors = append(ackErrors, failure)
				}
				if *ack {
					ackWith(consumer, view, &ackErrors)
				}
				entry["old_handle_ack"] = errorValue(consumer.Ack(context.Background(), &before))
			} else if *ack {
				ackWith(consumer, view, &ackErrors)
			}
			received = append(received, entry)
		}
	}
	progress("simple-consume: %d received", len(received))
	return map[string]any{"received": received, "ack_errors": ackErrors, "receive_errors": receiveErrors}, nil
}

func ackWith(consumer rmq.SimpleConsumer, view *rmq.MessageView, errs *[]map[string]any) {
	if err := consumer.Ack(context.Background(), view); err != nil {
		failure := errorValue(err)
		failure["message_id"] = view.GetMessageId()
		failure["op"] = "ack"
		*errs = append(*errs, failure)
	}
}

// failurePolicy decides, from --fail, whether a listener call fails.
type failurePolicy struct {
	always bool
	first  bool
	modulo int // index-mod-K: the first delivery fails for messages whose index K divides
}

func parseFailure(spec string) (failurePolicy, error) {
	switch {
	case spec == "never":
		return failurePolicy{}, nil
	case spec == "always":
		return failurePolicy{always: true}, nil
	case spec == "first":
		return failurePolicy{first: true}, nil
	case strings.HasPrefix(spec, "index-mod-"):
		k, err := strconv.Atoi(strings.TrimPrefix(spec, "index-mod-"))
		if err != nil || k < 1 {
			return failurePolicy{}, fmt.Errorf("--fail index-mod-K needs a positive K, not %q", spec)
		}
		return failurePolicy{modulo: k}, nil
	default:
		return failurePolicy{}, fmt.Errorf("--fail must be never, always, first or index-mod-K, not %q", spec)
	}
}

func (p failurePolicy) fails(view *rmq.MessageView, call int) bool {
	switch {
	case p.always:
		return true
	case p.first:
		return call == 1
	case p.modulo > 0:
		index, err := strconv.Atoi(view.GetProperties()["index"])
		return err == nil && index%p.modulo == 0 && call == 1
	default:
		return false
	}
}

// listener records every call of the push consumer's listener.
type listener struct {
	policy failurePolicy
	expect int
	mu     sync.Mutex
	calls  map[string]int
	events []map[string]any
	done   chan struct{}
}

func (l *listener) consume(view *rmq.MessageView) rmq.ConsumerResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[view.GetMessageId()]++
	fail := l.policy.fails(view, l.calls[view.GetMessageId()])
	result := map[bool]string{true: "fail", false: "ok"}[fail]
	properties := view.GetProperties()
	if properties == nil {
		properties = map[string]string{}
	}
	l.events = append(l.events, map[string]any{
		"message_id":    view.GetMessageId(),
		"attempt":       view.GetDeliveryAttempt(),
		"message_group": deref(view.GetMessageGroup()),
		"properties":    properties,
		"result":        result,
		"at_ms":         nowMs(),
	})
	if len(l.events) == l.expect {
		close(l.done)
	}
	if fail {
		return rmq.FAILURE
	}
	return rmq.SUCCESS
}

func runPushConsume(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("push-consume", flag.ContinueOnError)
	topic := fs.String("topic", "", "topic to consume (required)")
	group := fs.String("group", "", "consumer group (required)")
	expect := fs.Int("expect", 1, "stop after this many listener calls")
	failSpec := fs.String("fail", "never", "never, always, first or index-mod-K")
	maxWait := fs.Float64("max-wait-s", 120, "give up after this many seconds")
	linger := fs.Float64("linger-s", 2, "seconds to keep consuming after --expect calls")
	tag := fs.String("tag", "", "tag expression")
	sql := fs.String("sql", "", "SQL92 expression")
	if err := parse(fs, c, args); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	if err := required("group", *group); err != nil {
		return nil, err
	}
	policy, err := parseFailure(*failSpec)
	if err != nil {
		return nil, err
	}
	expression, err := filter(*tag, *sql)
	if err != nil {
		return nil, err
	}
	l := &listener{policy: policy, expect: *expect, calls: map[string]int{}, done: make(chan struct{})}
	if *expect <= 0 {
		close(l.done)
	}
	consumer, err := rmq.NewPushConsumer(c.config(*group),
		rmq.WithPushSubscriptionExpressions(map[string]*rmq.FilterExpression{*topic: expression}),
		rmq.WithPushMessageListener(&rmq.FuncMessageListener{Consume: l.consume}))
	if err != nil {
		return nil, fmt.Errorf("cannot create the push consumer: %w", err)
	}
	setRequestTimeout(consumer, c.requestTimeout())
	if err := consumer.Start(); err != nil {
		return nil, &startError{"push consumer", err}
	}
	select {
	case <-l.done:
	case <-time.After(seconds(*maxWait)):
		progress("push-consume: gave up waiting after %.0f s", *maxWait)
	}
	time.Sleep(seconds(*linger))
	l.mu.Lock()
	events := nonNil(l.events)
	l.mu.Unlock()
	stopWithin(consumer.GracefulStop, 5*time.Second)
	progress("push-consume: %d listener calls", len(events))
	return map[string]any{"events": events}, nil
}

// stopWithin stops a client but does not let a stop that hangs keep the result from being printed.
func stopWithin(stop func() error, limit time.Duration) {
	stopped := make(chan struct{})
	go func() {
		if err := stop(); err != nil {
			progress("stopping the client failed: %v", err)
		}
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(limit):
		progress("the client did not stop within %s", limit)
	}
}
