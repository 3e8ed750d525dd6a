"""The request and response bodies of the service (pydantic models).

These models are the HTTP contract: ``/openapi.json`` is generated from them.
A new field of a prediction goes in :class:`PredictResponse` here and in the
one function that fills it, ``_predict.prediction_body``.
"""

from pydantic import BaseModel, ConfigDict, Field


class PredictRequest(BaseModel):
    """One image to classify, base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    image_data: str = Field(
        ..., min_length=1,
        description="The encoded image file (JPEG, PNG, ...) in base64; a "
        "'data:image/...;base64,' prefix is accepted.",
    )
    confidence_threshold: float = Field(
        0.5, ge=0.0, le=1.0, strict=True,
        description="Below this top probability the class is 'unknown'.",
    )
    return_probabilities: bool = Field(
        True, description="Include the probability of every class.")


class BatchPredictRequest(BaseModel):
    """Several images to classify in one call, each base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(..., min_length=1,
                              description="Base64-encoded image files.")
    confidence_threshold: float = Field(0.5, ge=0.0, le=1.0, strict=True)
    return_probabilities: bool = True


class PhotoQuality(BaseModel):
    """The quality of the photo; it never changes the class by itself."""

    ok: bool = Field(..., description="No quality issue was found.")
    issues: list[str] = Field(
        default_factory=list,
        description="Among 'blurry', 'too_dark', 'too_bright' (over-exposed), "
        "'too_small' and 'low_information'.")
    message: str = Field("", description="The issues in a sentence for people, "
                         "or empty.")


class PredictResponse(BaseModel):
    """The prediction for one image (or why there is none)."""

    success: bool
    predicted_class: str | None = None
    confidence: float | None = None
    unknown_reason: str | None = Field(
        None, description="Why predicted_class is 'unknown': 'unlike any "
        "training photo' (novelty) or 'low confidence' (top probability under "
        "confidence_threshold); null otherwise.")
    quality: PhotoQuality | None = None
    probabilities: dict[str, float] | None = None
    processing_time_ms: float
    model_version: str
    error_message: str | None = None


class BatchPredictResponse(BaseModel):
    """The predictions of a batch, in the order of the request."""

    success: bool
    results: list[PredictResponse]
    processing_time_ms: float
    model_version: str


class HealthResponse(BaseModel):
    """Liveness and counters of the service."""

    status: str
    model_loaded: bool
    version: str
    uptime_seconds: float
    memory_usage_mb: float
    predictions_count: int
    average_response_time_ms: float
    counts_scope: str = Field(
        description="'process': the counts are this worker's only; 'all "
        "workers': summed over every worker of the server.")
    worker_pid: int


class ErrorResponse(BaseModel):
    """The body of every error."""

    success: bool = False
    error_message: str


#: The error answers every prediction route documents.
ERRORS = {code: {"model": ErrorResponse}
          for code in (400, 401, 408, 413, 415, 422)}
