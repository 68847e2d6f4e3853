// Command rmq-go-runner runs the shared client scenarios (tests/clients/SCENARIOS.md) with the
// official Go client, github.com/apache/rocketmq-clients/golang/v5, used as its users use it.
//
//	rmq-go-runner SCENARIO --endpoint HOST:PORT [common options] [scenario options]
//
// Progress goes to stderr; the last line on stdout is the JSON result. The client itself logs
// through zap to ~/logs/rocketmq/rocketmq_client_go.log (environment variable
// rocketmq.client.logRoot moves it).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
)

const language = "go"

// exitUnsupported is the exit code of a scenario the client's API cannot do.
const exitUnsupported = 3

// common holds the options every scenario takes.
type common struct {
	endpoint         string
	tls              string
	accessKey        string
	secretKey        string
	requestTimeoutMs int
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", "", "HOST:PORT of the server (required)")
	fs.StringVar(&c.tls, "tls", "default", "default (the client's own default: on), on or off")
	fs.StringVar(&c.accessKey, "access-key", "", "access key (no credentials when absent)")
	fs.StringVar(&c.secretKey, "secret-key", "", "secret key")
	fs.IntVar(&c.requestTimeoutMs, "request-timeout-ms", 10000, "request timeout in milliseconds")
}

// apply checks the common options and sets the client's process-wide TLS switch. It must run
// before any client is created: the client reads the switch when it dials.
func (c *common) apply() error {
	if c.endpoint == "" {
		return errors.New("--endpoint is required")
	}
	switch c.tls {
	case "default":
		// The client's own default: on, unless the environment variable rocketmq.client.enableSsl
		// says otherwise (the client read it when its package was initialised).
	case "on":
		rmq.EnableSsl = true
	case "off":
		rmq.EnableSsl = false
	default:
		return fmt.Errorf("--tls must be default, on or off, not %q", c.tls)
	}
	return nil
}

func (c *common) config(group string) *rmq.Config {
	config := &rmq.Config{Endpoint: c.endpoint, ConsumerGroup: group}
	if c.accessKey != "" || c.secretKey != "" {
		config.Credentials = &credentials.SessionCredentials{AccessKey: c.accessKey, AccessSecret: c.secretKey}
	}
	return config
}

func (c *common) requestTimeout() time.Duration {
	return time.Duration(c.requestTimeoutMs) * time.Millisecond
}

// timeoutSetter is implemented by every client of the Go SDK (it is part of its Client interface,
// not of Producer or SimpleConsumer): the request timeout has no constructor option.
type timeoutSetter interface {
	SetRequestTimeout(time.Duration)
}

func setRequestTimeout(client any, timeout time.Duration) {
	if setter, ok := client.(timeoutSetter); ok {
		setter.SetRequestTimeout(timeout)
	}
}

// errorValue is an error as the scenarios record it: the protocol code when the client reports
// one, and the text.
func errorValue(err error) map[string]any {
	if err == nil {
		return nil
	}
	var code any
	if status, ok := rmq.AsErrRpcStatus(err); ok {
		code = status.GetCode()
	}
	return map[string]any{"code": code, "error": err.Error()}
}

func nowMs() int64 {
	return time.Now().UnixMilli()
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// emit prints the result as the last stdout line.
func emit(result any) {
	data, err := json.Marshal(result)
	if err != nil {
		fail(fmt.Errorf("cannot encode the result: %w", err))
	}
	os.Stdout.Write(append(data, '\n'))
}

// startError is a client that could not start: the scenario did not run. The runner exits 1
// but still prints {"start_error": {"code", "error"}} so a test can tell why.
type startError struct {
	what string
	err  error
}

func (e *startError) Error() string { return fmt.Sprintf("cannot start the %s: %v", e.what, e.err) }
func (e *startError) Unwrap() error { return e.err }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rmq-go-runner:", err)
	var failed *startError
	if errors.As(err, &failed) {
		emit(map[string]any{"start_error": errorValue(failed.err)})
	}
	os.Exit(1)
}

// body is message i's body: "<prefix>-<i>:" then bytes 0x00..0xff repeating up to size bytes.
func body(prefix string, i, size int) []byte {
	data := []byte(fmt.Sprintf("%s-%d:", prefix, i))
	for pad := 0; len(data) < size; pad++ {
		data = append(data, byte(pad%256))
	}
	return data
}

// message is message i of the produce* scenarios (see SCENARIOS.md, "Messages").
func message(topic, prefix string, i, size int) *rmq.Message {
	msg := &rmq.Message{Topic: topic, Body: body(prefix, i, size)}
	msg.SetTag("tag-" + strconv.Itoa(i%3))
	msg.SetKeys("key-"+strconv.Itoa(i), "order-"+strconv.Itoa(i/10))
	msg.AddProperty("index", strconv.Itoa(i))
	msg.AddProperty("origin", language)
	return msg
}

func sortByIndex(entries []map[string]any) {
	sort.SliceStable(entries, func(a, b int) bool { return entries[a]["index"].(int) < entries[b]["index"].(int) })
}

type scenario struct {
	run   func(c *common, args []string) (any, error)
	usage string
}

var scenarios = map[string]scenario{
	"produce":             {runProduce, "--topic T --count N [--mode sync|async|mixed] [--prefix P] [--size B]"},
	"produce-fifo":        {runProduceFifo, "--topic T --count N --groups G [--prefix P] [--size B]"},
	"produce-priority":    {runProducePriority, "--topic T --specs P:N[,P:N...]"},
	"produce-delay":       {runProduceDelay, "--topic T"},
	"produce-transaction": {runProduceTransaction, "--topic T [--linger S]"},
	"simple-consume":      {runSimpleConsume, "--topic T --group G --expect N [--ack] [--invisible-s S] [--max-wait-s S] [--batch B] [--tag EXPR | --sql EXPR] [--change-invisible-s S]"},
	"lite-push":           {runLitePush, "--topic T --group G [--max-wait-s S] STEP... (sub:L unsub:L send:L:N recv:N quiet:S)"},
	"push-consume":        {runPushConsume, "--topic T --group G --expect N [--fail never|always|first|index-mod-K] [--max-wait-s S] [--linger-s S] [--tag EXPR | --sql EXPR]"},
}

func usage() {
	names := make([]string, 0, len(scenarios))
	for name := range scenarios {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: rmq-go-runner SCENARIO --endpoint HOST:PORT [--tls default|on|off]")
	fmt.Fprintln(os.Stderr, "         [--access-key AK --secret-key SK] [--request-timeout-ms MS] [scenario options]")
	fmt.Fprintln(os.Stderr, "scenarios (tests/clients/SCENARIOS.md):")
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %s %s\n", name, scenarios[name].usage)
	}
}

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		usage()
		os.Exit(2)
	}
	s, ok := scenarios[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	result, err := s.run(&common{}, os.Args[2:])
	if err != nil {
		fail(err)
	}
	emit(result)
}
