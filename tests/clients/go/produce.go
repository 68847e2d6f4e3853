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

// parse reads the common and scenario options and applies the common ones.
func parse(fs *flag.FlagSet, c *common, args []string) error {
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c.apply()
}

func required(name, value string) error {
	if value == "" {
		return fmt.Errorf("--%s is required", name)
	}
	return nil
}

func startProducer(c *common, topic string, opts ...rmq.ProducerOption) (rmq.Producer, error) {
	producer, err := rmq.NewProducer(c.config(""), append([]rmq.ProducerOption{rmq.WithTopics(topic)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create the producer: %w", err)
	}
	setRequestTimeout(producer, c.requestTimeout())
	if err := producer.Start(); err != nil {
		return nil, &startError{"producer", err}
	}
	return producer, nil
}

// sendResults collects the outcome of sends that may finish concurrently.
type sendResults struct {
	mu     sync.Mutex
	sent   []map[string]any
	errors []map[string]any
}

func (r *sendResults) record(entry map[string]any, receipts []*rmq.SendReceipt, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && len(receipts) == 0 {
		err = fmt.Errorf("the send returned no receipt")
	}
	if err != nil {
		failure := errorValue(err)
		failure["index"] = entry["index"]
		r.errors = append(r.errors, failure)
		return
	}
	entry["message_id"] = receipts[0].MessageID
	r.sent = append(r.sent, entry)
}

func (r *sendResults) result() map[string]any {
	sortByIndex(r.sent)
	sortByIndex(r.errors)
	return map[string]any{"sent": nonNil(r.sent), "errors": nonNil(r.errors)}
}

func nonNil(entries []map[string]any) []map[string]any {
	if entries == nil {
		return []map[string]any{}
	}
	return entries
}

func runProduce(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	topic := fs.String("topic", "", "topic to send to (required)")
	count := fs.Int("count", 1, "number of messages")
	mode := fs.String("mode", "sync", "sync, async or mixed (even indexes sync, odd async)")
	prefix := fs.String("prefix", "msg", "body prefix")
	size := fs.Int("size", 100, "body size in bytes (at least the prefix)")
	if err := parse(fs, c, args); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	if *mode != "sync" && *mode != "async" && *mode != "mixed" {
		return nil, fmt.Errorf("--mode must be sync, async or mixed, not %q", *mode)
	}
	producer, err := startProducer(c, *topic)
	if err != nil {
		return nil, err
	}
	defer producer.GracefulStop()

	results := &sendResults{}
	var pending sync.WaitGroup
	for i := 0; i < *count; i++ {
		how := *mode
		if how == "mixed" {
			how = map[bool]string{true: "sync", false: "async"}[i%2 == 0]
		}
		entry := map[string]any{"index": i, "mode": how}
		msg := message(*topic, *prefix, i, *size)
		if how == "sync" {
			receipts, err := producer.Send(context.Background(), msg)
			results.record(entry, receipts, err)
			continue
		}
		pending.Add(1)
		producer.SendAsync(context.Background(), msg, func(_ context.Context, receipts []*rmq.SendReceipt, err error) {
			defer pending.Done()
			results.record(entry, receipts, err)
		})
	}
	pending.Wait()
	progress("produce: %d sent, %d failed", len(results.sent), len(results.errors))
	return results.result(), nil
}

func runProduceFifo(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("produce-fifo", flag.ContinueOnError)
	topic := fs.String("topic", "", "FIFO topic to send to (required)")
	count := fs.Int("count", 1, "number of messages")
	groups := fs.Int("groups", 1, "number of message groups (message i goes to mg-<i % G>)")
	prefix := fs.String("prefix", "msg", "body prefix")
	size := fs.Int("size", 100, "body size in bytes (at least the prefix)")
	if err := parse(fs, c, args); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	if *groups < 1 {
		return nil, fmt.Errorf("--groups must be at least 1")
	}
	producer, err := startProducer(c, *topic)
	if err != nil {
		return nil, err
	}
	defer producer.GracefulStop()

	results := &sendResults{}
	for i := 0; i < *count; i++ {
		group := "mg-" + strconv.Itoa(i%*groups)
		seq := i / *groups
		msg := message(*topic, *prefix, i, *size)
		msg.SetMessageGroup(group)
		msg.AddProperty("seq", strconv.Itoa(seq))
		receipts, err := producer.Send(context.Background(), msg)
		results.record(map[string]any{"index": i, "mode": "sync", "message_group": group, "seq": seq}, receipts, err)
	}
	progress("produce-fifo: %d sent, %d failed", len(results.sent), len(results.errors))
	return results.result(), nil
}

// runProducePriority sends, for each spec P:N in order, N messages of priority P (body p<P>-<i>,
// tag tag-<P>), one at a time.
func runProducePriority(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("produce-priority", flag.ContinueOnError)
	topic := fs.String("topic", "", "priority topic to send to (required)")
	specs := fs.String("specs", "", "PRIORITY:COUNT[,PRIORITY:COUNT...] (required)")
	if err := parse(fs, c, args); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	if err := required("specs", *specs); err != nil {
		return nil, err
	}
	producer, err := startProducer(c, *topic)
	if err != nil {
		return nil, err
	}
	defer producer.GracefulStop()

	results := &sendResults{}
	index := 0
	for _, spec := range strings.Split(*specs, ",") {
		var priority, count int
		if _, err := fmt.Sscanf(spec, "%d:%d", &priority, &count); err != nil {
			return nil, fmt.Errorf("bad spec %q: %v", spec, err)
		}
		for i := 0; i < count; i++ {
			msg := &rmq.Message{Topic: *topic, Body: []byte(fmt.Sprintf("p%d-%d", priority, i))}
			msg.SetTag("tag-" + strconv.Itoa(priority))
			msg.AddProperty("origin", language)
			if err := msg.SetPriority(int32(priority)); err != nil {
				return nil, err
			}
			receipts, err := producer.Send(context.Background(), msg)
			results.record(map[string]any{"index": index, "mode": "sync", "priority": priority}, receipts, err)
			index++
		}
	}
	progress("produce-priority: %d sent, %d failed", len(results.sent), len(results.errors))
	return results.result(), nil
}

// delayedMessages are the messages of produce-delay, by name, with their due time from now.
var delayedMessages = []struct {
	name string
	due  time.Duration
}{
	{"plus3", 3 * time.Second},
	{"plus1", 1 * time.Second},
	{"past", -5 * time.Second},
	{"too-far", 41 * 24 * time.Hour},
	{"recalled", 5 * time.Second},
}

func runProduceDelay(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("produce-delay", flag.ContinueOnError)
	topic := fs.String("topic", "", "delay topic to send to (required)")
	prefix := fs.String("prefix", "delay", "body prefix")
	size := fs.Int("size", 100, "body size in bytes (at least the prefix)")
	if err := parse(fs, c, args); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	producer, err := startProducer(c, *topic)
	if err != nil {
		return nil, err
	}
	defer producer.GracefulStop()

	sent := map[string]any{}
	errs := map[string]any{"too-far": nil, "recall-again": nil}
	var recalled any
	for i, delayed := range delayedMessages {
		due := time.Now().Add(delayed.due).Truncate(time.Millisecond)
		msg := message(*topic, *prefix, i, *size)
		msg.AddProperty("name", delayed.name)
		msg.SetDelayTimestamp(due)
		receipts, err := producer.Send(context.Background(), msg)
		if err == nil && len(receipts) == 0 {
			err = fmt.Errorf("the send returned no receipt")
		}
		if err != nil {
			// Expected for too-far only; any other failure is recorded under its name.
			errs[delayed.name] = errorValue(err)
			continue
		}
		var handle any
		if receipts[0].RecallHandle != "" {
			handle = receipts[0].RecallHandle
		}
		sent[delayed.name] = map[string]any{"due_ms": due.UnixMilli(), "message_id": receipts[0].MessageID,
			"recall_handle": handle}
		if delayed.name != "recalled" {
			continue
		}
		messageID, err := producer.Recall(context.Background(), *topic, receipts[0].RecallHandle)
		if err != nil {
			errs["recall"] = errorValue(err)
			continue
		}
		recalled = messageID
		_, err = producer.Recall(context.Background(), *topic, receipts[0].RecallHandle)
		errs["recall-again"] = errorValue(err)
	}
	progress("produce-delay: %d sent", len(sent))
	return map[string]any{"sent": sent, "errors": errs, "recall": recalled}, nil
}
