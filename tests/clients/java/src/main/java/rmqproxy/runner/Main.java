package rmqproxy.runner;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Runs one scenario of tests/clients/SCENARIOS.md with the official Java client and prints its result as the last
 * line of stdout. Everything else (the client's own output included) goes to stderr; the client's log file is
 * ~/logs/rocketmq/rocketmq-client.log unless -Drocketmq.log.root says otherwise.
 *
 * Exit codes: 0 the scenario ran, 1 the runner failed (a client that could not start, for one), 2 a bad command
 * line, 3 the scenario is unsupported by this client.
 */
public final class Main {
    private static final String USAGE = "usage: java -jar rmq-java-runner.jar "
        + "produce|produce-fifo|produce-delay|produce-transaction|simple-consume|push-consume "
        + "--endpoint HOST:PORT [--tls default|on|off] [--access-key AK --secret-key SK] [--request-timeout-ms MS] "
        + "[scenario options] (see tests/clients/SCENARIOS.md)";

    private Main() {
    }

    public static void main(String[] argv) {
        PrintStream result = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        // Whatever else writes to System.out lands on stderr: the last stdout line is always the result.
        System.setOut(System.err);
        int exitCode;
        try {
            result.println(Json.write(run(argv)));
            exitCode = 0;
        } catch (Args.UsageError e) {
            System.err.println(e.getMessage());
            System.err.println(USAGE);
            exitCode = 2;
        } catch (Unsupported e) {
            result.println(Json.write(Map.of("unsupported", e.getMessage())));
            exitCode = 3;
        } catch (Throwable t) {
            t.printStackTrace();
            // Still one JSON line, so that a test shows why (a client that could not start, typically).
            result.println(Json.write(Map.of("runner_error", Clients.error(t))));
            exitCode = 1;
        }
        result.flush();
        // The client keeps non-daemon threads (schedulers, gRPC) after close: leave without waiting for them.
        System.exit(exitCode);
    }

    private static Map<String, Object> run(String[] argv) throws Exception {
        Args args = Args.parse(argv);
        Clients clients = new Clients(args);
        return switch (args.scenario) {
            case "produce" -> Producing.produce(args, clients);
            case "produce-fifo" -> Producing.produceFifo(args, clients);
            case "produce-priority" -> Producing.producePriority(args, clients);
            case "produce-delay" -> Producing.produceDelay(args, clients);
            case "produce-transaction" -> Producing.produceTransaction(args, clients);
            case "simple-consume" -> Consuming.simpleConsume(args, clients);
            case "push-consume" -> Consuming.pushConsume(args, clients);
            case "lite-push" -> Lite.litePush(args, clients);
            default -> throw new Args.UsageError("unknown scenario " + args.scenario);
        };
    }

    /** A scenario the Java client's API cannot do: exit code 3 with {"unsupported": why}. */
    static final class Unsupported extends RuntimeException {
        Unsupported(String why) {
            super(why);
        }
    }
}
