"""Settings every service reads, from the environment names the design fixes."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(default="", alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str = Field(default="", alias="DATABASE_URL")
    data_dir: Path = Field(default=Path("var"), alias="BUDKAVLE_DATA_DIR")
    http_port: int = Field(default=8080, alias="BUDKAVLE_HTTP_PORT", ge=1, le=65535)
    http_host: str = Field(default="127.0.0.1", alias="BUDKAVLE_HTTP_HOST")
    programs_dir: Path = Field(default=Path("deploy/programs"), alias="BUDKAVLE_PROGRAMS_DIR")
    templates_dir: Path = Field(default=Path("templates"), alias="BUDKAVLE_TEMPLATES_DIR")
    public_url: str = Field(default="", alias="BUDKAVLE_PUBLIC_URL")
    log_level: str = Field(default="INFO", alias="BUDKAVLE_LOG_LEVEL")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'budkavle.db').resolve()}"

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")
