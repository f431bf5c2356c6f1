"""What an import may connect to (MySQL, a remote Elasticsearch) and how long it waits:
the outbound policy checked before connecting, the operator's timeouts, and one message
for a source that cannot be used, whatever answered (or did not) at its port."""

from __future__ import annotations

from dataclasses import dataclass, field

from tracardi_daemon.config.settings import OutboundSettings, Settings
from tracardi_daemon.errors import BackendUnavailable, InvalidInput
from tracardi_daemon.infra.outbound import OutboundPolicy, OutboundRefused


@dataclass(frozen=True)
class RemoteAccess:
    outbound: OutboundPolicy = field(default_factory=lambda: OutboundPolicy(OutboundSettings()))
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteAccess:
        upgrade = settings.upgrade
        return cls(OutboundPolicy(settings.outbound), upgrade.source_connect_timeout_s,
                   upgrade.source_read_timeout_s)

    def check(self, kind: str, host: str, port: int) -> None:
        """InvalidInput when the policy refuses ``host``; the generic BackendUnavailable
        when it does not resolve."""
        try:
            self.outbound.check(host, port)
        except OutboundRefused as exc:
            raise InvalidInput(f"the import's source: {exc}") from None
        except (OSError, UnicodeError):
            raise unusable(kind, host, port) from None


def unusable(kind: str, host: str, port: int | None) -> BackendUnavailable:
    """The one error of a source that refused, timed out or spoke another protocol: it
    must not tell a definition writer what listens at a port."""
    where = f"{host}:{port}" if port is not None else host
    article = "an" if kind[:1] in "AEIOU" else "a"
    return BackendUnavailable(kind.lower(), f"could not connect to the source at {where}, "
                                            f"or it is not {article} {kind} server")
