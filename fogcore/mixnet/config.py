"""Mix node configuration: a TOML file's `[node]` table, then environment variables
`FOG_NODE_<FIELD>` (upper case) over it. docs/node.md §11 lists every field."""

import dataclasses
import os
import tomllib
import warnings
from dataclasses import dataclass, field

__all__ = ["DEPRECATED_ENV_PREFIX", "ENV_PREFIX", "ConfigError", "NodeConfig",
           "load_config"]

ENV_PREFIX = "FOG_NODE_"
#: the prefix read before `ENV_PREFIX`: still honoured, with a FutureWarning per variable,
#: when the `FOG_NODE_` variable of the same field is not set
DEPRECATED_ENV_PREFIX = "FOGCORE_NODE_"
LAYERS = ("entry", "mix", "exit", "gateway")
FORMATS = ("sphinx", "kem")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass
class NodeConfig:
    """Everything a mix node is configured with (defaults suit a production node)."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    layer: str = "mix"
    format: str = "sphinx"
    #: identity seed and routing keys (JSON, created on first start); empty: keys in memory
    keys_file: str = ""
    directory_url: str = ""
    #: mean and cap of the exponential mixing delay, in milliseconds
    mean_delay_ms: float = 50.0
    max_delay_ms: float = 2000.0
    delay_epoch_s: int = 10
    #: routing-key lifetime and how long the previous key stays accepted after rotation
    key_epoch_s: int = 3600
    key_overlap_s: int = 300
    #: receive slots of 2560 bytes (the node's packet memory) and the free slots below
    #: which reading pauses (-1: automatic)
    arena_slots: int = 8192
    arena_reserve: int = -1
    max_batch: int = 256
    #: run the batch processor in a worker thread (the GIL is released while it works)
    process_in_thread: bool = True
    #: cores for packet processing: big batches are split across this many GIL-free
    #: threads of the one process (docs/node.md "Scaling across cores")
    workers: int = 1
    #: SO_REUSEPORT on the listener, so several node processes can share one port
    reuse_port: bool = False
    link_queue: int = 2048
    max_write: int = 256
    connect_timeout_s: float = 2.0
    backoff_base_s: float = 0.05
    backoff_max_s: float = 5.0
    #: SO_SNDBUF of each link in bytes (0: the kernel's autotuned default)
    link_sndbuf: int = 0
    #: a link's TCP_USER_TIMEOUT and keepalive span: unacknowledged data or silent
    #: keepalives for this long end the connection in the kernel (0: kernel defaults)
    link_tcp_timeout_s: float = 3.0
    #: a link whose transport stays paused (nothing flushed) this long is declared dead
    send_timeout_s: float = 3.0
    #: seconds between liveness probes on each link (0: no probes) and how long a link
    #: may go without a valid PROBE_ACK before its next hop is declared unreachable
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 3.0
    #: per-connection frame rate cap (frames/s, 0: none) and burst
    peer_rate: float = 0.0
    peer_burst: float = 0.0
    max_connections: int = 1024
    #: incoming connections from one source address (0: no cap)
    max_connections_per_source: int = 64
    #: a new connection must complete a frame (packet or control) within this (0: none)
    first_frame_timeout_s: float = 5.0
    frame_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    replay_capacity: int = 2_000_000
    replay_fp_rate: float = 1e-6
    mailbox_boxes: int = 10000
    mailbox_depth: int = 256
    #: at leave: bound on the wait for batches in flight and for links to flush
    drain_timeout_s: float = 10.0
    #: at leave: seconds of draining (still accepting) before the listener closes;
    #: -1: 2 x max_delay_ms + 5 s (docs/node.md §16)
    leave_grace_s: float = -1.0
    metrics_host: str = "127.0.0.1"
    #: Prometheus scrape port; 0: no HTTP endpoint (the node still keeps its metrics)
    metrics_port: int = 0
    #: static next-hop table {node id hex: "host:port"} until a directory is used
    peers: dict = field(default_factory=dict)
    #: operator API key for `directory_url`: with both set the node registers its signed
    #: descriptor and publishes its VRF epoch proofs there (docs/testnet.md)
    directory_key: str = ""
    #: host written into the descriptor (default: `listen_host`)
    advertise_host: str = ""
    #: a gateway's mailbox fetch port (0: the packet port + 1)
    gateway_port: int = 0
    #: seconds between JSON stats lines on standard output (0: none)
    stats_interval_s: float = 0.0

    def validate(self) -> "NodeConfig":
        """Check ranges; return self. Raises ConfigError."""
        if self.layer not in LAYERS:
            raise ConfigError(f"layer must be one of {', '.join(LAYERS)}")
        if self.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}")
        if not 0 <= self.gateway_port < 65536 or self.stats_interval_s < 0:
            raise ConfigError("need gateway_port in [0, 65535] and stats_interval_s >= 0")
        if not 0 <= self.listen_port < 65536 or not 0 <= self.metrics_port < 65536:
            raise ConfigError("ports must be in [0, 65535]")
        if not 0 <= self.mean_delay_ms <= self.max_delay_ms or self.max_delay_ms > 4_000_000:
            raise ConfigError("need 0 <= mean_delay_ms <= max_delay_ms <= 4000000")
        if not 2 <= self.arena_slots < 2**24:
            raise ConfigError("arena_slots must be in [2, 2^24)")
        if not 1 <= self.workers <= 8:
            raise ConfigError("workers must be 1 to 8")
        for name in ("max_batch", "link_queue", "max_write", "max_connections",
                     "delay_epoch_s", "key_epoch_s", "replay_capacity", "mailbox_boxes",
                     "mailbox_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if not 0 <= self.key_overlap_s < self.key_epoch_s:
            raise ConfigError("key_overlap_s must be in [0, key_epoch_s)")
        for name in ("link_tcp_timeout_s", "send_timeout_s", "probe_interval_s",
                     "max_connections_per_source", "first_frame_timeout_s",
                     "idle_timeout_s", "drain_timeout_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if self.probe_interval_s and not self.probe_timeout_s > self.probe_interval_s:
            raise ConfigError("probe_timeout_s must exceed probe_interval_s")
        if self.leave_grace_s < 0 and self.leave_grace_s != -1:
            raise ConfigError("leave_grace_s must be >= 0, or -1 (automatic)")
        if self.peer_rate < 0 or self.peer_burst < 0:
            raise ConfigError("peer_rate and peer_burst must be >= 0")
        if not 0 < self.replay_fp_rate < 1:
            raise ConfigError("replay_fp_rate must be in (0, 1)")
        for key, value in self.peers.items():
            try:
                if len(bytes.fromhex(key)) != 32:
                    raise ValueError
                host, _, port = str(value).rpartition(":")
                if not host or not 0 < int(port) < 65536:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"peer {key!r}: want a 64-hex-digit id and 'host:port'") \
                    from None
        return self

    def leave_grace(self) -> float:
        """Seconds a leaving node keeps accepting: `leave_grace_s`, or when automatic,
        two maximal upstream delays plus 5 s (docs/node.md §16)."""
        if self.leave_grace_s >= 0:
            return self.leave_grace_s
        return 2 * self.max_delay_ms / 1000 + 5.0

    def peer_table(self) -> dict[bytes, tuple[str, int]]:
        """`peers` as {node id: (host, port)}."""
        table = {}
        for key, value in self.peers.items():
            host, _, port = str(value).rpartition(":")
            table[bytes.fromhex(key)] = (host.strip("[]"), int(port))
        return table


def _convert(name: str, kind, raw):
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return str(raw)
        if kind is dict:
            if isinstance(raw, dict):
                return raw
            # environment form: id=host:port,id=host:port
            pairs = [item.split("=", 1) for item in str(raw).split(",") if item.strip()]
            return {k.strip(): v.strip() for k, v in pairs}
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{name}: cannot read {raw!r} as {kind.__name__}")


def load_config(path: str | None = None, env: dict | None = None, **overrides) -> NodeConfig:
    """The node configuration from the TOML file at `path` (its `[node]` table, or the
    top level when there is none), environment variables and keyword overrides, in that
    order of increasing precedence. A deprecated `FOGCORE_NODE_*` variable raises a
    FutureWarning naming its `FOG_NODE_*` replacement."""
    env = os.environ if env is None else env
    values: dict = {}
    if path:
        with open(path, "rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        values.update(data.get("node", data))
    fields = {f.name: f for f in dataclasses.fields(NodeConfig)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    for name in fields:
        key = ENV_PREFIX + name.upper()
        old = DEPRECATED_ENV_PREFIX + name.upper()
        if old in env:
            ignored = " and is ignored, as " + key + " is set" if key in env else ""
            warnings.warn(f"{old} is deprecated{ignored}; use {key}", FutureWarning,
                          stacklevel=2)
            if key not in env:
                values[name] = env[old]
        if key in env:
            values[name] = env[key]
    values.update(overrides)
    kinds = {"listen_host": str, "layer": str, "format": str, "keys_file": str,
             "directory_url": str, "metrics_host": str, "peers": dict,
             "process_in_thread": bool}
    converted = {}
    for name, raw in values.items():
        if name not in fields:
            raise ConfigError(f"unknown setting {name!r}")
        default = fields[name].default
        kind = kinds.get(name) or type(default)
        converted[name] = _convert(name, kind, raw)
    return NodeConfig(**converted).validate()
