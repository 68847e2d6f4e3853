package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

// liteCollector records what a LitePushConsumer's listener was given.
type liteCollector struct {
	mu       sync.Mutex
	messages []map[string]any
}

func (l *liteCollector) consume(view *rmq.MessageView) rmq.ConsumerResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages = append(l.messages, map[string]any{
		"body": string(view.GetBody()), "lite_topic": view.GetLiteTopic(), "topic": view.GetTopic()})
	return rmq.SUCCESS
}

func (l *liteCollector) take() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	taken := l.messages
	l.messages = nil
	return taken
}

// runLitePush is the lite-push scenario: a producer sends LITE messages to the lite parent --topic
// and a LitePushConsumer bound to it changes its lite subscriptions while they flow. Steps (as
// arguments after the options): sub:NAME, unsub:NAME, send:NAME:N (bodies NAME-<i>), recv:N (wait
// for N more), quiet:S (wait S seconds, expecting nothing).
func runLitePush(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("lite-push", flag.ContinueOnError)
	topic := fs.String("topic", "", "lite parent topic (required)")
	group := fs.String("group", "", "consumer group (required)")
	maxWait := fs.Float64("max-wait-s", 40, "seconds a recv step waits at most")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := c.apply(); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	if err := required("group", *group); err != nil {
		return nil, err
	}
	producer, err := startProducer(c, *topic)
	if err != nil {
		return nil, err
	}
	defer producer.GracefulStop()
	collector := &liteCollector{}
	consumer, err := rmq.NewLitePushConsumer(c.config(*group), rmq.NewLitePushConsumerConfig(*topic, 30*time.Second),
		rmq.WithPushMessageListener(&rmq.FuncMessageListener{Consume: collector.consume}))
	if err != nil {
		return nil, fmt.Errorf("cannot create the lite push consumer: %w", err)
	}
	setRequestTimeout(consumer, c.requestTimeout())
	if err := consumer.Start(); err != nil {
		return nil, &startError{"lite push consumer", err}
	}
	counts := map[string]int{}
	steps := []map[string]any{}
	for _, step := range fs.Args() {
		parts := strings.Split(step, ":")
		errs := []map[string]any{}
		received := []map[string]any{}
		switch parts[0] {
		case "sub":
			if err := consumer.SubscribeLite(parts[1]); err != nil {
				errs = append(errs, errorValue(err))
			}
		case "unsub":
			if err := consumer.UnSubscribeLite(parts[1]); err != nil {
				errs = append(errs, errorValue(err))
			}
		case "send":
			n, _ := strconv.Atoi(parts[2])
			for i := 0; i < n; i++ {
				msg := &rmq.Message{Topic: *topic, Body: []byte(fmt.Sprintf("%s-%d", parts[1], counts[parts[1]]))}
				msg.SetLiteTopic(parts[1])
				counts[parts[1]]++
				if _, err := producer.Send(context.Background(), msg); err != nil {
					errs = append(errs, errorValue(err))
				}
			}
		case "recv", "quiet":
			n, _ := strconv.ParseFloat(parts[1], 64)
			wait := seconds(*maxWait)
			if parts[0] == "quiet" {
				wait = seconds(n)
			}
			deadline := time.Now().Add(wait)
			for time.Now().Before(deadline) && (parts[0] == "quiet" || float64(len(received)) < n) {
				time.Sleep(200 * time.Millisecond)
				received = append(received, collector.take()...)
			}
		default:
			return nil, fmt.Errorf("unknown step %q", step)
		}
		steps = append(steps, map[string]any{"step": step, "errors": errs, "received": nonNil(received)})
	}
	stopWithin(consumer.GracefulStop, 5*time.Second)
	return map[string]any{"steps": steps}, nil
}
