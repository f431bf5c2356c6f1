"""The daemon's settings: one frozen dataclass per TOML section, with defaults.

Field types drive validation in ``config.py``; a field whose metadata has ``secret``
is masked wherever settings are printed. Units are in the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLE_NAMES: tuple[str, ...] = ("upgrade", "segmentation", "mapping", "scheduler", "trigger")
ROLE_ALIASES: dict[str, str] = {
    "migration": "upgrade",
    "import": "upgrade",
    "post-collection": "mapping",
}

SECRET = {"secret": True}


@dataclass(frozen=True)
class DaemonSettings:
    roles: tuple[str, ...] = ("upgrade",)
    health_socket: str = "/run/tracardi-daemon/health.sock"
    pool_processes: int = 0  # 0 = one per CPU


LAYOUTS: tuple[str, ...] = ("daemon", "tracardi-0.8", "tracardi-0.9")


@dataclass(frozen=True)
class TracardiSettings:
    tenant: str = "tracardi"
    db_version: str = "100"
    production: bool = False
    api_url: str = "http://127.0.0.1:8686"
    partitioning: str = "quarter"  # month, quarter or year, for event/profile/session
    # whose indices and definitions the daemon works on: its own ("daemon"), or an
    # existing Tracardi installation's as they are ("tracardi-0.8", "tracardi-0.9")
    layout: str = "daemon"
    # beside Tracardi: its PROFILE_/EVENT_/SESSION_PARTITIONING, when the installation
    # changed the version's default (None: the default)
    profile_partitioning: str | None = None
    event_partitioning: str | None = None
    session_partitioning: str | None = None
    # refresh the profile indices after each batch of profile writes, before the
    # workflows it triggers start: Tracardi loads profiles by search, which sees a write
    # only after a refresh (None: on in a Tracardi layout, off in the daemon's own)
    refresh_profile_writes: bool | None = None


@dataclass(frozen=True)
class DefinitionsSettings:
    refresh_s: float = 5.0
    # definitions of one kind per tenant that `definitions apply` lets exist
    max_per_kind: int = 10_000


@dataclass(frozen=True)
class ElasticSettings:
    hosts: tuple[str, ...] = ("http://127.0.0.1:9200",)
    username: str | None = None
    password: str | None = field(default=None, metadata=SECRET)
    api_key: str | None = field(default=None, metadata=SECRET)
    ca_file: str | None = None
    verify_certs: bool = True
    request_timeout_s: float = 30.0
    max_retries: int = 3


@dataclass(frozen=True)
class RedisSettings:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, metadata=SECRET)
    ssl: bool = False
    ca_file: str | None = None
    socket_timeout_s: float = 5.0
    connect_timeout_s: float = 3.0


@dataclass(frozen=True)
class MysqlSettings:
    """Tracardi 0.9's MySQL database, where layout ``tracardi-0.9`` reads Tracardi's
    definitions and writes task progress; Tracardi's own variables set it."""

    host: str = "127.0.0.1"
    port: int = 3306
    username: str = "root"
    password: str | None = field(default=None, metadata=SECRET)
    database: str = "tracardi"
    connect_timeout_s: float = 5.0


@dataclass(frozen=True)
class LicenseSettings:
    token: str | None = field(default=None, metadata=SECRET)
    file: str | None = None
    public_key_file: str | None = None
    check_interval_s: float = 86400.0


@dataclass(frozen=True)
class StartupSettings:
    wait_s: float = 60.0


@dataclass(frozen=True)
class ShutdownSettings:
    grace_s: float = 20.0


@dataclass(frozen=True)
class SupervisorSettings:
    restart_backoff_initial_s: float = 0.5
    restart_backoff_max_s: float = 30.0
    max_consecutive_failures: int = 5
    # a step running longer than this makes the role "stalled": health 503, no watchdog
    step_budget_s: float = 20.0
    backend_probe_interval_s: float = 2.0


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"


@dataclass(frozen=True)
class QueueSettings:
    visibility_timeout_s: float = 5.0
    max_attempts: int = 5
    retry_backoff_initial_s: float = 1.0
    retry_backoff_max_s: float = 300.0
    poll_interval_s: float = 1.0
    batch_size: int = 100


@dataclass(frozen=True)
class SchedulerSettings:
    horizon_s: float = 10.0
    lease_s: float = 15.0
    max_payload_bytes: int = 1_048_576
    max_payload_depth: int = 64
    max_delay_days: float = 3650.0
    min_interval_s: float = 1.0


@dataclass(frozen=True)
class DispatchSettings:
    """The senders that deliver HTTP targets (webhook, tracker) of the scheduler and
    trigger roles from the durable ``dispatch`` queue."""

    senders: int = 4  # threads, shared by every host
    per_host_concurrency: int = 2  # requests in flight to one host, per daemon
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 15.0  # one attempt, connect to last byte
    max_attempts: int = 5
    retry_backoff_initial_s: float = 1.0
    retry_backoff_max_s: float = 60.0
    # flow targets (Tracardi's own segment-add rules): the Python of Tracardi's own
    # environment, which runs the workflow in Tracardi's engine (None: not configured)
    flow_python: str | None = None
    # KEY=value file of Tracardi's environment for that Python, over the daemon's own
    flow_env_file: str | None = None
    flow_timeout_s: float = 60.0  # one run, request to saved profile
    flow_start_timeout_s: float = 60.0  # the helper importing Tracardi


@dataclass(frozen=True)
class MappingSettings:
    """The ``mapping`` role: a live tail of the event index and batch jobs."""

    live: bool = True  # follow the event index; False = batch jobs only
    live_start: str = "now"  # where a tail without a checkpoint starts: now or earliest
    # an event visible this long after its metadata.time.insert is still applied once
    late_arrival_s: float = 60.0
    # how often the tail looks back over the late-arrival window for stragglers
    recheck_every_s: float = 5.0
    batch_size: int = 1000
    lease_s: float = 15.0  # the live tail's leader lease and each job's lease
    max_conflict_retries: int = 5  # reload-and-reapply rounds for a profile
    poll_interval_s: float = 1.0
    # beside Tracardi its collector maps the events it stores at /track: the live tail
    # applies to them only what the collector skips (falsy values, literals, ops it does
    # not have). None: so in a Tracardi layout; False: every item, as for the daemon's
    # own layout (events that no collector mapped)
    collector_mapped: bool | None = None


@dataclass(frozen=True)
class SegmentationSettings:
    """The ``segmentation`` role: profiles re-segmented as they change, and passes."""

    batch_size: int = 1000  # profiles per pass batch; profile-changed messages per step
    lease_s: float = 15.0  # the pass scheduler's leader lease and each pass's lease
    # how often segments whose condition reads the clock (now(), offsets) get a pass
    time_pass_every_s: float = 3600.0
    max_conflict_retries: int = 5
    poll_interval_s: float = 1.0
    # a segment-change intent this old belongs to a writer that died: the leader's
    # sweep announces its transitions if the write happened
    intent_stale_s: float = 60.0
    # in a Tracardi layout, re-evaluate the profiles Tracardi itself changed, followed
    # by their metadata.time.update from a checkpoint; False = only profile-changed
    follow_tracardi: bool = True
    # a profile change visible this long after its metadata.time.update (refresh, clock
    # skew between writers) is still seen once
    follow_late_arrival_s: float = 60.0
    # how often the follower looks back over that window for changes seen late
    follow_recheck_every_s: float = 5.0


@dataclass(frozen=True)
class UpgradeSettings:
    """The ``upgrade`` role: migrations (and, later, imports) run as queued jobs."""

    batch_size: int = 1000  # documents read and written per batch
    # bulk requests of a migration in flight at once, while the next batch is read
    writes_in_flight: int = 2
    # ranges of ids of one source index a migration reads at the same time
    scan_slices: int = 2
    # source indices of asynchronous plan steps a migration copies at the same time
    concurrent_indices: int = 4
    lease_s: float = 15.0  # each job's lease: a dead daemon's job is taken over after it
    poll_interval_s: float = 1.0
    # the only directories csv/jsonl import files may lie in (after resolving links);
    # definitions name files, the operator names where they may be
    import_dirs: tuple[str, ...] = ("/var/lib/tracardi-daemon/imports",)
    # longest line of an import file (header included), in bytes with its line ending
    import_max_line_bytes: int = 1_048_576
    # a MySQL or remote Elasticsearch source: connecting (and, for MySQL, the server's
    # greeting) and then each read must answer within these
    source_connect_timeout_s: float = 10.0
    source_read_timeout_s: float = 600.0


@dataclass(frozen=True)
class OutboundSettings:
    """Hosts that definitions may make the daemon connect to: import sources and
    dispatch targets. Entries are addresses or CIDR ranges (``10.1.0.0/16``) and host
    names (``hooks.example.com``, ``*.example.com``). A denied entry always wins; an
    allowed one opens what is closed by default (loopback, link-local, private,
    unspecified, multicast and reserved addresses)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleSettings:
    threads: int = 1


# the fields of Settings that are not TOML sections
NOT_SECTIONS = ("role", "source", "given")


@dataclass(frozen=True)
class Settings:
    """The effective configuration; ``source`` names the file it came from, if any."""

    daemon: DaemonSettings = DaemonSettings()
    tracardi: TracardiSettings = TracardiSettings()
    elastic: ElasticSettings = ElasticSettings()
    redis: RedisSettings = RedisSettings()
    mysql: MysqlSettings = MysqlSettings()
    license: LicenseSettings = LicenseSettings()
    startup: StartupSettings = StartupSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    log: LogSettings = LogSettings()
    queue: QueueSettings = QueueSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    dispatch: DispatchSettings = DispatchSettings()
    mapping: MappingSettings = MappingSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    upgrade: UpgradeSettings = UpgradeSettings()
    outbound: OutboundSettings = OutboundSettings()
    definitions: DefinitionsSettings = DefinitionsSettings()
    role: dict[str, RoleSettings] = field(default_factory=dict)
    source: str | None = None
    # the "<section>.<key>" names a file or the environment set (the rest are defaults)
    given: frozenset[str] = frozenset()

    def role_threads(self, name: str) -> int:
        return self.role.get(name, RoleSettings()).threads


def render_settings(settings: Settings) -> str:
    """The effective settings as TOML-like text, secrets masked, for ``check-config``."""
    from dataclasses import fields

    lines = [f"# effective configuration (file: {settings.source or 'none, defaults'})"]
    sections: list[tuple[str, object]] = [
        (f.name, getattr(settings, f.name)) for f in fields(settings)
        if f.name not in NOT_SECTIONS
    ]
    sections += [(f"role.{name}", value) for name, value in sorted(settings.role.items())]
    for name, section in sections:
        lines.append(f"\n[{name}]")
        for item in fields(section):  # type: ignore[arg-type]
            value = getattr(section, item.name)
            shown = "\"********\"" if item.metadata.get("secret") and value else _toml(value)
            lines.append(f"{item.name} = {shown}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if value is None:
        return '""  # not set'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
