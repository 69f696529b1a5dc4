"""Settings every service reads, from the environment names the design fixes.

Each service's settings class extends `CommonSettings`; the process that starts a service builds its
settings once and passes them in (`budkavle up` passes its own values as keyword arguments, which win
over the environment). Nothing writes the environment to configure a service.
"""

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.retry import RetryPolicy


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(default="", alias="KAFKA_BOOTSTRAP_SERVERS")
    # Apache Kafka supports the idempotent producer; the embedded tansu broker does not.
    kafka_enable_idempotence: bool = Field(default=False, alias="KAFKA_ENABLE_IDEMPOTENCE")
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

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.retry_schedule, self.retry_horizon)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'budkavle.db').resolve()}"

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")
