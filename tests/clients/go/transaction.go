package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

// halfMessages are the transactional messages of produce-transaction: how the runner resolves
// each, and what the checker answers (property "decide") for those it leaves open.
var halfMessages = []struct {
	name   string
	decide string
}{
	{"committed", ""},
	{"rolled-back", ""},
	{"checker-commits", "commit"},
	{"checker-rolls-back", "rollback"},
	{"checker-unsure", "unknown"},
}

// checker answers the server's checks of orphaned half messages from their "decide" property
// and records every check.
type checker struct {
	mu    sync.Mutex
	asked []map[string]any
}

func (k *checker) check(view *rmq.MessageView) rmq.TransactionResolution {
	properties := view.GetProperties()
	k.mu.Lock()
	k.asked = append(k.asked, map[string]any{"name": properties["name"], "at_ms": nowMs()})
	k.mu.Unlock()
	progress("checker asked about %s (%s)", properties["name"], view.GetMessageId())
	switch properties["decide"] {
	case "commit":
		return rmq.COMMIT
	case "rollback":
		return rmq.ROLLBACK
	default:
		return rmq.UNKNOWN
	}
}

func runProduceTransaction(c *common, args []string) (any, error) {
	fs := flag.NewFlagSet("produce-transaction", flag.ContinueOnError)
	topic := fs.String("topic", "", "transaction topic to send to (required)")
	linger := fs.Float64("linger", 15, "seconds to stay online answering checks")
	prefix := fs.String("prefix", "tx", "body prefix")
	size := fs.Int("size", 100, "body size in bytes (at least the prefix)")
	if err := parse(fs, c, args); err != nil {
		return nil, err
	}
	if err := required("topic", *topic); err != nil {
		return nil, err
	}
	k := &checker{}
	producer, err := startProducer(c, *topic, rmq.WithTransactionChecker(&rmq.TransactionChecker{Check: k.check}))
	if err != nil {
		return nil, err
	}
	defer producer.GracefulStop()

	sent := map[string]any{}
	errs := map[string]any{"commit-again": nil}
	for i, half := range halfMessages {
		msg := message(*topic, *prefix, i, *size)
		msg.AddProperty("name", half.name)
		if half.decide != "" {
			msg.AddProperty("decide", half.decide)
		}
		transaction := producer.BeginTransaction()
		receipts, err := producer.SendWithTransaction(context.Background(), msg, transaction)
		if err == nil && len(receipts) == 0 {
			err = fmt.Errorf("the send returned no receipt")
		}
		if err != nil {
			errs[half.name] = errorValue(err)
			continue
		}
		sent[half.name] = receipts[0].MessageID
		switch half.name {
		case "committed":
			if err := transaction.Commit(); err != nil {
				errs["commit"] = errorValue(err)
			} else {
				errs["commit-again"] = errorValue(transaction.Commit())
			}
		case "rolled-back":
			if err := transaction.RollBack(); err != nil {
				errs["rollback"] = errorValue(err)
			}
		}
	}
	progress("produce-transaction: %d half messages sent; lingering %.1f s for checks", len(sent), *linger)
	time.Sleep(time.Duration(*linger * float64(time.Second)))
	k.mu.Lock()
	asked := nonNil(k.asked)
	k.mu.Unlock()
	return map[string]any{"sent": sent, "asked": asked, "errors": errs}, nil
}
