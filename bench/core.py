"""`fogcore bench core`: micro-benchmarks of the packet core on one core, plus the batch
entry point with one and two worker threads.

Every figure of one run shares the machine's state, so the ratios between them (against
the yardstick `x25519.pynacl`, one X25519 through PyNaCl) are what to quote.
"""

import os
import time

import nacl.bindings as nb

from fogcore.bench.harness import time_interleaved

__all__ = ["run", "steps"]

BATCH = 256       # packets per batch in the batch benchmarks
HOPS = 5
_RESULTS = [
    "x25519.pynacl", "sphinx.process", "sphinx.create5", "sphinx.create5.sequential",
    "kem.process", "kem.create5", "sphinx.process.ref", "vrf.prove", "vrf.verify",
    "replay.check", "sphinx.batch.threads1", "sphinx.batch.threads2", "kem.batch.threads1",
    "kem.batch.threads2", "sphinxmix.process", "sphinxmix.create5",
]


def steps(args) -> int:
    """How many progress steps `run` reports: setting up, then one per round."""
    return 1 + _timing(args)["repeats"]


class _NeverSeen:
    """A replay filter that has seen nothing, so one packet can be processed again and
    again; the real filter's cost is measured on its own (`replay.check`) and inside the
    batch benchmarks."""

    @staticmethod
    def check_and_add(tag) -> bool:
        return False


def _timing(args):
    if getattr(args, "quick", False):
        return {"min_time": 0.02, "repeats": 3}
    return {"min_time": 0.25, "repeats": 7}


def _batch_case(backend, replay_cls, keys, frames, threads):
    """A callable processing one whole batch (fresh copy of the frames, fresh filter key)."""
    from fogcore.packet import BATCH_STRIDE, OUTCOME_RECORD_SIZE

    pristine = bytearray(len(frames) * BATCH_STRIDE)
    for i, frame in enumerate(frames):
        pristine[i * BATCH_STRIDE:i * BATCH_STRIDE + len(frame)] = frame
    work = bytearray(pristine)
    records = bytearray(len(frames) * OUTCOME_RECORD_SIZE)
    replay = replay_cls(1 << 16, 1e-9)

    def once():
        work[:] = pristine
        replay.reset()
        backend.process_batch(keys, work, len(frames), replay, records, threads=threads)

    return once


def _cpu_per_op(fn, number: int) -> float:
    """CPU time of this thread per call: unlike wall time, it does not count the time the
    thread waited for a core, so it stays meaningful on a shared, busy machine."""
    t0 = time.thread_time()
    for _ in range(number):
        fn()
    return round((time.thread_time() - t0) / number * 1e6, 3)


def _per_packet(figures: dict, packets: int) -> dict:
    """Turn the timing of a whole batch into per-packet figures."""
    out = dict(figures)
    out["median_us"] = round(figures["median_us"] / packets, 3)
    out["min_us"] = round(figures["min_us"] / packets, 3)
    out["ops_per_s"] = round(figures["ops_per_s"] * packets, 1)
    out["batch"] = packets
    return out


def run(args, progress) -> dict:
    """Run the suite; returns {name: {"median_us", "ops_per_s", ...}}."""
    from fogcore import vrf
    from fogcore._impl import implementation
    from fogcore.bench import peers
    from fogcore.packet import _batch_py
    from fogcore.packet.keys import NodeKeys
    from fogcore.replay import ReplayFilter

    timing = _timing(args)
    # Every case is set up first, then all are timed in interleaved rounds, so that the
    # ratios the targets are about (a hop against X25519, against sphinxmix, two threads
    # against one) compare figures taken over the same stretch of time.
    cases: dict[str, object] = {}
    batch_sizes: dict[str, int] = {}

    def measure(name, fn, packets=None):
        cases[name] = fn
        if packets:
            batch_sizes[name] = packets

    backend = implementation("_batch")
    nodes = [NodeKeys.generate() for _ in range(HOPS)]
    route = [k.info() for k in nodes]
    mailbox = os.urandom(32)
    message = os.urandom(1024)

    scalar, point = os.urandom(32), nb.crypto_scalarmult_base(os.urandom(32))
    measure("x25519.pynacl", lambda: nb.crypto_scalarmult(scalar, point))

    never = _NeverSeen()
    for fmt, name in ((1, "sphinx"), (2, "kem")):
        frame, _ = backend.build_packet(fmt, route, 2, mailbox, b"", message, os.urandom(32))
        measure(f"{name}.process", lambda f=frame: backend.process_packet(nodes[0], f, never))
        seed = os.urandom(32)
        measure(f"{name}.create5",
                lambda fmt=fmt, seed=seed: backend.build_packet(fmt, route, 2, mailbox, b"", message, seed,
                                                     method="reencoded"))
        if fmt == 1:
            measure("sphinx.create5.sequential",
                    lambda seed=seed: backend.build_packet(1, route, 2, mailbox, b"", message, seed,
                                                 method="sequential"))

    ref_frame, _ = _batch_py.build_packet(1, route, 2, mailbox, b"", message, os.urandom(32))
    measure("sphinx.process.ref", lambda: _batch_py.process_packet(nodes[0], ref_frame, never))

    sk = os.urandom(32)
    alpha = (7).to_bytes(8, "big")
    proof = vrf.prove(sk, alpha)
    pk = vrf.public_key(sk)
    measure("vrf.prove", lambda: vrf.prove(sk, alpha))
    measure("vrf.verify", lambda: vrf.verify(pk, proof, alpha))

    replay = ReplayFilter(1 << 20, 1e-9)
    tags = [os.urandom(32) for _ in range(4096)]
    cursor = iter(range(1 << 62))

    def check():
        replay.check_and_add(tags[next(cursor) & 4095])

    measure("replay.check", check)

    if backend is not _batch_py:  # the reference has no worker threads
        batch = BATCH // 4 if getattr(args, "quick", False) else BATCH
        for fmt, name in ((1, "sphinx"), (2, "kem")):
            frames = [backend.build_packet(fmt, route, 2, mailbox, b"", message,
                                           os.urandom(32))[0] for _ in range(batch)]
            for threads in (1, 2):
                measure(f"{name}.batch.threads{threads}",
                        _batch_case(backend, ReplayFilter, nodes[0], frames, threads),
                        packets=batch)

    peer_cases = peers.sphinxmix_cases()  # None without the `peers` extra
    for name, fn in (peer_cases or {}).items():
        measure(name, fn)
    progress.step(f"set up {len(cases)} cases")
    timed = time_interleaved(
        cases, **timing,
        on_round=lambda r: progress.step(f"round {r + 1} of {timing['repeats']}"))
    results: dict[str, dict] = {}
    for name in _RESULTS:  # in the documented order
        if name not in timed:
            continue  # not measurable here (no threads in the reference, no peers)
        figures = timed[name]
        if name in batch_sizes:
            figures = _per_packet(figures, batch_sizes[name])
        else:
            figures["cpu_us"] = _cpu_per_op(cases[name], figures["calls_per_round"])
        results[name] = figures
    return results
