"""Session request and response models."""

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.common import RequestModel


class SessionCreate(RequestModel):
    api_key: str = Field(min_length=1, max_length=200, examples=["sbx_your_key"])


class SessionInfo(BaseModel):
    owner_id: str
    expires_at: datetime = Field(description="when the cookie stops working; revoking the key ends it sooner")
