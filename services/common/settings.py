"""Settings every service reads, from the environment names the design fixes.

Each service's settings class extends `CommonSettings`; the process that starts a service builds its
settings once and passes them in (`budkavle up` passes its own values as keyword arguments, which win
over the environment). Nothing writes the environment to configure a service.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.retry import RetryPolicy


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(default="", alias="KAFKA_BOOTSTRAP_SERVERS")
    # Apache Kafka supports the idempotent producer; the embedded tansu broker does not.
    kafka_enable_idempotence: bool = Field(default=False, alias="KAFKA_ENABLE_IDEMPOTENCE")
    #: Topics are created with these (1 and 1 suit the embedded broker; a cluster of three wants 3 and 2).
    kafka_replication_factor: int = Field(default=1, alias="KAFKA_REPLICATION_FACTOR", ge=1, le=32)
    kafka_min_insync_replicas: int = Field(default=1, alias="KAFKA_MIN_INSYNC_REPLICAS", ge=1, le=32)
    kafka_topic_partitions: int = Field(default=3, alias="KAFKA_TOPIC_PARTITIONS", ge=1, le=1000)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = Field(
        default="SCRAM-SHA-512", alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str = Field(default="", alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: str = Field(default="", alias="KAFKA_SASL_PASSWORD")
    #: TLS: the CA that signed the brokers' certificates, and this client's own for mutual TLS.
    kafka_ssl_cafile: str = Field(default="", alias="KAFKA_SSL_CAFILE")
    kafka_ssl_certfile: str = Field(default="", alias="KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: str = Field(default="", alias="KAFKA_SSL_KEYFILE")
    database_url: str = Field(default="", alias="DATABASE_URL")
    data_dir: Path = Field(default=Path("var"), alias="BUDKAVLE_DATA_DIR")
    http_port: int = Field(default=8080, alias="BUDKAVLE_HTTP_PORT", ge=1, le=65535)
    http_host: str = Field(default="127.0.0.1", alias="BUDKAVLE_HTTP_HOST")
    programs_dir: Path = Field(default=Path("deploy/programs"), alias="BUDKAVLE_PROGRAMS_DIR")
    templates_dir: Path = Field(default=Path("templates"), alias="BUDKAVLE_TEMPLATES_DIR")
    public_url: str = Field(default="", alias="BUDKAVLE_PUBLIC_URL")
    log_level: str = Field(default="INFO", alias="BUDKAVLE_LOG_LEVEL")
    #: The bearer token that opens /metrics (Prometheus' `authorization: credentials`); unset: not served.
    metrics_token: str = Field(default="", alias="BUDKAVLE_METRICS_TOKEN")
    #: When a temporarily refused delivery is tried again (the last step repeats), and when to give up.
    retry_schedule: str = Field(default="1m,5m,30m,2h", alias="BUDKAVLE_RETRY_SCHEDULE")
    retry_horizon: str = Field(default="24h", alias="BUDKAVLE_RETRY_HORIZON")
    #: Sign-in for people (OpenID Connect). Unset in embedded mode: the local provider with the demo people.
    oidc_issuer: str = Field(default="", alias="BUDKAVLE_OIDC_ISSUER")
    oidc_client_id: str = Field(default="", alias="BUDKAVLE_OIDC_CLIENT_ID")
    oidc_client_secret: str = Field(default="", alias="BUDKAVLE_OIDC_CLIENT_SECRET")
    #: The ID token claim whose values the programme files map to roles.
    oidc_roles_claim: str = Field(default="groups", alias="BUDKAVLE_OIDC_ROLES_CLAIM", min_length=1)
    #: Signs people's sessions; every person-facing service needs the same one.
    session_key: str = Field(default="", alias="BUDKAVLE_SESSION_KEY")
    session_idle_minutes: int = Field(default=30, alias="BUDKAVLE_SESSION_IDLE_MINUTES", ge=1, le=24 * 60)
    session_max_hours: int = Field(default=8, alias="BUDKAVLE_SESSION_MAX_HOURS", ge=1, le=7 * 24)
    #: How long records about a person (deliveries, clicks, answers) are kept; per-group counts stay.
    retention_days: int = Field(default=365, alias="BUDKAVLE_RETENTION_DAYS", ge=1, le=3650)

    @model_validator(mode="after")
    def _retry_policy_reads(self) -> "CommonSettings":
        self.retry_policy()
        return self

    @model_validator(mode="after")
    def _kafka_settings_agree(self) -> "CommonSettings":
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(f"KAFKA_MIN_INSYNC_REPLICAS ({self.kafka_min_insync_replicas}) is larger than "
                             f"KAFKA_REPLICATION_FACTOR ({self.kafka_replication_factor}): no write could succeed")
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_USERNAME "
                             "and KAFKA_SASL_PASSWORD")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("mutual TLS needs both KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE")
        return self

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.retry_schedule, self.retry_horizon)

    def resolved_database_url(self, service: str) -> str:
        """DATABASE_URL, where every service keeps its own tables; without it (embedded), the service's own
        SQLite file in the data directory: SQLite lets one writer at a time per file, and a service that
        writes much (the email ledger, the tailor's plans, the follow-up counts) would queue behind the
        others."""
        if self.database_url:
            return self.database_url
        return sqlite_url(self.data_dir, service)

    def as_environment(self) -> dict[str, str]:
        """These settings as the environment variables they are read from, for a process of the same settings
        (the embedded platform's services that run apart)."""
        variables: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if field.alias is None or value is None:
                continue
            variables[field.alias] = str(value).lower() if isinstance(value, bool) else str(value)
        return variables

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")


def sqlite_url(data_dir: Path, service: str) -> str:
    """The embedded mode's database of one service: `<data dir>/<service>.db`."""
    return f"sqlite+aiosqlite:///{(data_dir / f'{service}.db').resolve()}"
