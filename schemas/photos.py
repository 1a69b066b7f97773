"""Photo request and response models (SPEC section 5)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from core.signing import signed_url
from db.enums import AnalysisState, TagKind, TagSource, TagState, UploadStatus
from schemas.common import Page, Problem, RequestModel

if TYPE_CHECKING:
    from services.photos.views import PhotoView as PhotoViewLike


class Gps(BaseModel):
    lat: float
    lon: float
    alt: float | None = None


class Camera(BaseModel):
    make: str | None = None
    model: str | None = None


class Place(BaseModel):
    city: str | None = None
    region: str | None = None
    country: str | None = None


class Quality(BaseModel):
    score: float
    issues: list[str]
    metrics: dict[str, float]


class Tag(BaseModel):
    name: str
    kind: TagKind
    confidence: float | None
    source: TagSource
    state: TagState


class Photo(BaseModel):
    id: str
    filename: str
    sha256: str
    content_type: str
    size_bytes: int
    width: int = Field(description="stored pixel width, before orientation is applied")
    height: int = Field(description="stored pixel height, before orientation is applied")
    # Not `format: date-time`: that demands an offset, and a camera's wall time often has none.
    taken_at: Annotated[
        datetime | None,
        WithJsonSchema(
            {"anyOf": [{"type": "string", "examples": ["2014-07-14T18:30:00+02:00"]}, {"type": "null"}]}
        ),
    ] = Field(
        description="ISO 8601 capture time as the camera wrote it; carries its UTC offset when the file "
        "records one, and none otherwise (wall time)"
    )
    taken_at_source: str | None = Field(description="EXIF field the capture time came from")
    gps: Gps | None
    camera: Camera | None
    orientation: int
    rotation: int = Field(description="user's clockwise rotation applied on top of the EXIF orientation")
    caption: str | None
    uploaded_at: datetime
    analysis_state: AnalysisState
    tags: list[Tag] = Field(default_factory=list)
    faces_count: int = 0
    place: Place | None = None
    quality: Quality | None = None
    suggested_rotation: int | None = Field(
        default=None,
        description="for files without a camera orientation: clockwise turn (0/90/180/270) that makes the "
        "photo upright, as suggested by the analysis; apply it with PATCH rotation",
    )
    suggested_rotation_confidence: float | None = None
    favorite: bool = False
    rating: int = Field(default=0, description="0 (unrated) to 5 stars")
    archived: bool = Field(default=False, description="left out of lists and search unless asked for")
    trashed_at: datetime | None = Field(default=None, description="when it went to the trash; null if not")

    thumbnail_url: str | None = Field(
        default=None,
        description="signed, short-lived URL of the 256 px thumbnail: works in <img src> without a key",
    )
    original_url: str | None = Field(default=None, description="signed, short-lived URL of the original")
    enhanced_url: str | None = Field(
        default=None, description="signed, short-lived URL of the low-light enhanced derivative"
    )


class PhotoPage(Page[Photo]):
    total: int | None = Field(default=None, description="photos passing the filters, with include_total=true")


class PhotoPatch(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rotation": 90, "caption": "Grandma at the beach"}]}
    )

    # Never null: the column is NOT NULL and "no rotation" is 0. Fields not sent are left alone
    # (updates use exclude_unset), so the default is only what the schema shows.
    rotation: Literal[0, 90, 180, 270] = Field(default=0, description="clockwise; omit to keep")
    caption: str | None = Field(default=None, max_length=2000)
    favorite: bool | None = None
    rating: int | None = Field(default=None, ge=0, le=5)
    archived: bool | None = None


class UploadResult(BaseModel):
    filename: str
    status: UploadStatus
    photo: Photo | None = None
    error: Problem | None = None


class UploadResponse(BaseModel):
    results: list[UploadResult]
    job_id: str | None = Field(
        default=None, description="the analysis job the new photos joined; follow it by GET /v1/jobs/{id}"
    )


def photo_from_view(view: "PhotoViewLike") -> Photo:
    row = view.photo
    taken_at = row.taken_at
    if taken_at is not None and row.taken_at_offset:
        taken_at = datetime.fromisoformat(f"{taken_at.isoformat()}{row.taken_at_offset}")
    return Photo(
        id=row.id,
        filename=row.filename,
        sha256=row.sha256,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        width=row.width,
        height=row.height,
        taken_at=taken_at,
        taken_at_source=row.taken_at_source,
        gps=Gps(lat=row.gps_lat, lon=row.gps_lon, alt=row.gps_alt)
        if row.gps_lat is not None and row.gps_lon is not None
        else None,
        camera=Camera(make=row.camera_make, model=row.camera_model)
        if row.camera_make or row.camera_model
        else None,
        orientation=row.orientation,
        rotation=row.rotation,
        caption=row.caption,
        uploaded_at=row.uploaded_at,
        analysis_state=row.analysis_state,
        tags=[Tag(**tag) for tag in view.tags],
        faces_count=view.faces_count,
        place=Place(**view.place) if view.place else None,
        quality=Quality(
            score=row.quality_score, issues=row.quality_issues or [], metrics=row.quality_metrics or {}
        )
        if row.quality_score is not None
        else None,
        suggested_rotation=row.suggested_rotation,
        suggested_rotation_confidence=row.suggested_rotation_confidence,
        thumbnail_url=signed_url(f"/v1/photos/{row.id}/thumbnail", {"size": "256"}),
        original_url=signed_url(f"/v1/photos/{row.id}/original"),
        enhanced_url=signed_url(f"/v1/photos/{row.id}/enhanced", {"mode": "low_light"}),
        favorite=row.favorite,
        rating=row.rating,
        archived=row.archived,
        trashed_at=row.trashed_at,
    )


class ObjectDetection(BaseModel):
    class_name: str
    score: float
    bbox: list[float] = Field(description="[x, y, w, h] normalised to the upright image")
    model: str
