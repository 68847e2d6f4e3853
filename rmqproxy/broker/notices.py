"""What the broker does with the notices of the other processes sharing its store (the kinds are
listed in rmqproxy/broker/sharing.py). Each handler only updates what this process keeps: nothing
here writes to the store except through the ordinary broker operations it starts."""

from __future__ import annotations

from typing import Any

from rmqproxy.broker.alarm import Alarm, SharedAlarm
from rmqproxy.broker.background import BrokerBackground
from rmqproxy.broker.clients import ClientSession


class BrokerNotices(BrokerBackground):
    def listen_to_others(self) -> None:
        """Subscribe to the other processes' notices (nothing happens over a LocalBus)."""
        sharing = self.sharing
        if not sharing.shared:
            return
        sharing.on("wake", self._on_wake)
        sharing.on("catalog", lambda sender, entry: self.spawn(self.refresh_catalog_entry(*entry)))
        sharing.on("alarm", self._on_alarm)
        sharing.on("client", lambda sender, summary: self.clients.learn_remote(sender, summary, self._clock.now_ms()))
        sharing.on("gone", self._on_gone)
        sharing.on("unrenew", lambda sender, receipt: self.renewals.discard(receipt))
        sharing.on("attempt", self._on_attempt)
        sharing.on("check", self._on_check)
        self.questions.listen()
        sharing.on_resume(self._on_bus_resumed)
        self.clients.on_change = self._tell_others
        sharing.start()

    def _on_bus_resumed(self) -> None:
        """Notices sent while the bus was down are lost: look again at everything they could have
        said (long polls, and the background jobs this process runs)."""
        self.waiters.notify_everyone()
        now = self._clock.now_ms()
        for alarm in (self._revive_alarm, self._timer_alarm, self._check_alarm):
            if alarm.held:
                Alarm.wake_at(alarm, now)

    def _on_wake(self, sender: str, items: list[tuple[tuple[str, str | None], int | None]]) -> None:
        for (topic, group), count in items:
            self.waiters.notify(topic, group, count)

    def _on_alarm(self, sender: str, item: tuple[str, int]) -> None:
        name, at_ms = item
        alarm: SharedAlarm = {"revive": self._revive_alarm, "timers": self._timer_alarm,
                              "transaction checks": self._check_alarm}[name]
        if alarm.held:
            Alarm.wake_at(alarm, at_ms)  # not SharedAlarm's: that would pass it on again

    def _on_gone(self, sender: str, client_id: str) -> None:
        self.clients.forget_remote(client_id)
        here = self.clients.get(client_id)
        if here is None or not here.streams:  # still connected here: it has not gone
            self.spawn(self.release_renewed(client_id))

    def _on_attempt(self, sender: str, item: tuple[Any, Any]) -> None:
        self._attempts.setdefault(item[0], item[1])

    def _on_check(self, sender: str, item: tuple[str, str, Any]) -> None:
        worker, client_id, half = item
        if worker != self.sharing.worker_id:
            return
        session: ClientSession | None = self.clients.get(client_id)
        if session is not None and session.streams and self._ask_producer is not None:
            self._ask_producer(session, half)
