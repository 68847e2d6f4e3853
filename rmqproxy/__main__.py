"""``python -m rmqproxy`` is the ``rmqproxy`` command."""

from rmqproxy.cli import main

raise SystemExit(main())
