"""Serial-fed input: stream ``in`` frames to a device and collect its answers.

Used by ``tinygen emulate --data`` and ``tinygen validate``.  One input is in flight at a
time (the firmware holds one line), each answer is matched to its input by ``seq``, and
every wait is bounded:

* :func:`handshake` sends ``who`` and waits for the ``hello``; it checks the model id
  against the model given, the input mode and the input size.
* :func:`run_inputs` sends each sample and waits for ``inf <seq>``; an answer that does
  not come (a line lost to a bad CRC, a device that was busy) is asked for again
  ``retries`` times, then it is an error.  An ``err`` answer is an error at once.

The connection is any pyserial object (a real port, QEMU's ``socket://``, a pseudo-
terminal in tests).  A connection that ends, or a ``alive`` check that reports the
emulator gone, ends the run with a :class:`FeedError` instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import TinygenError
from .protocol import Decoder, DeviceError, Hello, Inference, Record, encode_input, encode_who

HELLO_TIMEOUT_S = 10.0
"""How long to wait for the hello (``who`` is repeated every WHO_INTERVAL_S)."""
WHO_INTERVAL_S = 2.0
BOOT_HELLO_WAIT_S = 0.3
ANSWER_TIMEOUT_S = 10.0
"""How long one input may take to be answered (sending it included)."""
RETRIES = 1
"""How often an unanswered input is sent again before the run fails."""
READ_SIZE = 4096
IDLE_SLEEP_S = 0.002

NOENGINE_HINT = ("this firmware was built without an inference engine (engine=none in its "
                 "hello); render and build it with an engine")


class FeedError(TinygenError):
    """The device did not answer as the protocol says (or the link to it ended)."""


@dataclass
class Link:
    """A device connection with a decoder; records go to ``on_record`` as they arrive.

    ``alive`` returns None while the other end (QEMU) runs, else why it stopped.
    """

    conn: Any
    name: str
    decoder: Decoder = field(default_factory=Decoder)
    on_record: Callable[[Record], None] = lambda r: None
    alive: Callable[[], str | None] = lambda: None
    pending: list[Record] = field(default_factory=list)

    def send(self, frame: bytes) -> None:
        try:
            self.conn.write(frame)
        except Exception as exc:  # noqa: BLE001 (SerialException, OSError, write timeouts)
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException | None) -> FeedError:
        why = None
        for _ in range(50):  # a killed emulator takes a moment to be reaped
            why = self.alive()
            if why is not None:
                break
            time.sleep(0.02)
        if why is None:
            why = f"the connection ended ({exc})" if exc else "the connection ended"
        return FeedError(f"lost {self.name}: {why}",
                         hint="check the device; `tinygen monitor` shows what it sends")

    def next_record(self, deadline: float) -> Record | None:
        """The next decoded record, or None when ``deadline`` (monotonic) has passed."""
        while not self.pending:
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self.conn.read(READ_SIZE)
            except Exception as exc:  # noqa: BLE001 (SerialException, OSError)
                raise self._lost(exc) from None
            if chunk:
                for record in self.decoder.feed(chunk):
                    self.on_record(record)
                    self.pending.append(record)
            else:
                if self.alive() is not None:
                    raise self._lost(None)
                time.sleep(IDLE_SLEEP_S)
        return self.pending.pop(0)

    def drops(self) -> str:
        """'3 lines dropped (bad_crc 2, bad_format 1)' or ''."""
        stats = self.decoder.stats
        if not stats.dropped:
            return ""
        reasons = ", ".join(f"{name} {getattr(stats, name)}" for name in stats.DROP_REASONS
                            if getattr(stats, name))
        return f"{stats.dropped} lines from the device dropped ({reasons})"


def handshake(link: Link, expected_model: str | None, input_bytes: int | None,
              timeout: float = HELLO_TIMEOUT_S, mode: str | None = "serial") -> Hello:
    """Ask for the hello and check it: model id, input mode (``mode``; None: any), input
    size."""
    deadline = time.monotonic() + timeout
    # a board that just started sends its hello by itself: give it a moment before asking
    asked = time.monotonic() - WHO_INTERVAL_S + BOOT_HELLO_WAIT_S
    hello = link.decoder.hello  # a boot hello that arrived already
    while hello is None:
        now = time.monotonic()
        if now - asked >= WHO_INTERVAL_S:
            link.send(encode_who())
            asked = now
        record = link.next_record(min(deadline, asked + WHO_INTERVAL_S))
        if isinstance(record, Hello):
            hello = record
        elif record is None and time.monotonic() >= deadline:
            dropped = link.drops()
            raise FeedError(
                f"no hello from {link.name} within {timeout:g} s"
                + (f"; {dropped}" if dropped else ""),
                hint="is the tinygen firmware running there, at this baud rate? "
                     "`tinygen monitor` shows what the port sends")
    link.pending.clear()  # what came before the hello is not an answer to our inputs
    if expected_model and (hello.model or "").lower() != expected_model[:16].lower():
        raise FeedError(
            f"{link.name} runs model {hello.model or '(none given)'}, not "
            f"{expected_model[:16]} (the model given)",
            hint="flash/build the firmware of this model, or give the model the device runs")
    if mode is not None and hello.mode not in (None, mode):
        raise FeedError(f"{link.name} takes its input from '{hello.mode}', not from {mode}",
                        hint=f"render the firmware with --input {mode}")
    if input_bytes is not None and hello.input_shape is not None:
        device_bytes = 1
        for dim in hello.input_shape:
            device_bytes *= dim
        if device_bytes != input_bytes:
            shape = "x".join(map(str, hello.input_shape))
            raise FeedError(f"{link.name} expects {device_bytes} input bytes ({shape}), the "
                            f"model given takes {input_bytes}",
                            hint="give the model the device runs")
    return hello


def _answer_error(link: Link, err: DeviceError, index: int, total: int) -> FeedError:
    text = f": {err.text}" if err.text else ""
    hint = {"noengine": NOENGINE_HINT,
            "input": "the device expects another input size: give the model it runs",
            "alloc": "the engine could not start: see the arena figures in its hello "
                     "(`tinygen monitor`) and render again",
            }.get(err.code, "see docs/protocol.md for the error codes")
    return FeedError(f"{link.name} answered input {index + 1} of {total} with "
                     f"`err {err.code}`{text}", hint=hint)


def run_inputs(link: Link, samples: Sequence[bytes], timeout: float = ANSWER_TIMEOUT_S,
               retries: int = RETRIES,
               on_answer: Callable[[int, Inference], None] = lambda i, r: None,
               ) -> tuple[list[Inference], int]:
    """Send each sample (raw int8 bytes) as ``in <index>``; returns the answers, in input
    order, and how many inputs had to be sent again."""
    answers: list[Inference] = []
    resent = 0
    total = len(samples)
    for index, data in enumerate(samples):
        frame = encode_input(index, data)
        answer: Inference | None = None
        for attempt in range(retries + 1):
            if attempt:
                resent += 1
            link.send(frame)
            deadline = time.monotonic() + timeout
            while answer is None:
                record = link.next_record(deadline)
                if record is None:
                    break  # timed out: send again, or fail
                if isinstance(record, Inference) and record.seq == index:
                    answer = record
                elif isinstance(record, DeviceError) and record.seq == index:
                    raise _answer_error(link, record, index, total)
                elif isinstance(record, DeviceError) and record.seq is None and \
                        record.code in ("crc", "frame", "overflow"):
                    break  # our frame arrived damaged: send it again
            if answer is not None:
                break
        if answer is None:
            dropped = link.drops()
            raise FeedError(
                f"no answer from {link.name} to input {index + 1} of {total} within "
                f"{timeout:g} s ({retries + 1} tries)" + (f"; {dropped}" if dropped else ""),
                hint="a noisy or too fast link, or a firmware that stopped: `tinygen "
                     "monitor` shows what it sends; --timeout gives it longer")
        answers.append(answer)
        on_answer(index, answer)
    return answers, resent
