"""First-run set-up request and response models."""

from pydantic import BaseModel, Field

from schemas.common import RequestModel


class SetupStatus(BaseModel):
    owner_needed: bool = Field(description="true while no owner exists: POST /v1/setup creates the first")


class SetupCreate(RequestModel):
    name: str = Field(default="default", min_length=1, max_length=200, examples=["alice"])


class FirstOwner(BaseModel):
    owner_id: str
    name: str
    key_id: str
    api_key: str = Field(description="shown once: keep it to sign in and to call the API")
