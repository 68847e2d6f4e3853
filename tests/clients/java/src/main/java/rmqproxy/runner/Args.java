package rmqproxy.runner;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/** The command line: `SCENARIO --endpoint HOST:PORT [--name value | --flag]...`, as tests/clients/SCENARIOS.md. */
final class Args {
    /** Options that take no value. */
    private static final Set<String> FLAGS = Set.of("ack");

    final String scenario;
    private final Map<String, String> options;
    private final Set<String> used = new HashSet<>();

    private Args(String scenario, Map<String, String> options) {
        this.scenario = scenario;
        this.options = options;
    }

    static Args parse(String[] argv) {
        if (argv.length == 0 || argv[0].startsWith("--")) {
            throw new UsageError("the first argument names the scenario");
        }
        Map<String, String> options = new HashMap<>();
        for (int i = 1; i < argv.length; i++) {
            String arg = argv[i];
            if (!arg.startsWith("--") || arg.length() == 2) {
                throw new UsageError("unexpected argument " + arg);
            }
            String name = arg.substring(2);
            if (FLAGS.contains(name)) {
                options.put(name, "true");
            } else if (i + 1 < argv.length) {
                options.put(name, argv[++i]);
            } else {
                throw new UsageError("option " + arg + " needs a value");
            }
        }
        return new Args(argv[0], options);
    }

    String text(String name, String otherwise) {
        used.add(name);
        return options.getOrDefault(name, otherwise);
    }

    String required(String name) {
        String value = text(name, null);
        if (value == null) {
            throw new UsageError("scenario " + scenario + " needs --" + name);
        }
        return value;
    }

    boolean flag(String name) {
        return "true".equals(text(name, null));
    }

    int integer(String name, Integer otherwise) {
        String value = otherwise == null ? required(name) : text(name, otherwise.toString());
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new UsageError("--" + name + " wants a whole number, not " + value);
        }
    }

    /** A number of seconds, fractions allowed, as milliseconds. */
    long secondsAsMillis(String name, double otherwise) {
        String value = text(name, null);
        if (value == null) {
            return Math.round(otherwise * 1000);
        }
        try {
            return Math.round(Double.parseDouble(value) * 1000);
        } catch (NumberFormatException e) {
            throw new UsageError("--" + name + " wants seconds, not " + value);
        }
    }

    boolean has(String name) {
        used.add(name);
        return options.containsKey(name);
    }

    /** Refuses options the scenario did not read: a misspelt option must not pass silently. */
    void checkAllUsed() {
        for (String name : options.keySet()) {
            if (!used.contains(name)) {
                throw new UsageError("scenario " + scenario + " takes no option --" + name);
            }
        }
    }

    /** A mistake on the command line: exit code 2 with the reason on stderr. */
    static final class UsageError extends RuntimeException {
        UsageError(String message) {
            super(message);
        }
    }
}
