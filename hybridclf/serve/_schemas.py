"""The request and response bodies of the service (pydantic models).

These models are the HTTP contract: ``/openapi.json`` is generated from them.
A new field of a prediction goes in :class:`PredictResponse` here and in the
one function that fills it, ``_answers.prediction_body``.
"""

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

#: The most nearest training photos one answer may carry.
MAX_NEIGHBOURS = 10
NEIGHBOURS_HELP = (
    f"How many of the most similar training photos to return with each answer, "
    f"as evidence: an integer from 0 (none, the default) to {MAX_NEIGHBOURS}. A "
    "model without an embedding index (neighbours.npz) answers none.")


def _neighbours_count(value, *, text):
    """The ``neighbours`` value, or an error that names it and its range."""
    if text and isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # a query string
    if (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= MAX_NEIGHBOURS):
        return value
    raise PydanticCustomError(
        "neighbours_range",
        "must be an integer from 0 to {limit} (the nearest training photos "
        "to return); got {got}",
        {"limit": MAX_NEIGHBOURS, "got": repr(value)})


#: ``neighbours`` of a JSON body: an integer, never a string or a float.
Neighbours = Annotated[
    int, Field(ge=0, le=MAX_NEIGHBOURS, description=NEIGHBOURS_HELP),
    BeforeValidator(lambda v: _neighbours_count(v, text=False))]
#: ``neighbours`` of a query string (``/predict/file``).
NeighboursQuery = Annotated[
    int, Field(ge=0, le=MAX_NEIGHBOURS),
    BeforeValidator(lambda v: _neighbours_count(v, text=True))]


#: What a request's ``confidence_threshold`` means, for the OpenAPI schema.
THRESHOLD_HELP = (
    "Below this top probability the class is 'unknown' (scaled down for a photo "
    "close to a training photo; see docs/service.md). Null or absent: the "
    "threshold the model learned in training, as `hybridclf predict` uses.")


class PredictRequest(BaseModel):
    """One image to classify, base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    # no min_length: an empty file is answered 400 with the reason, as in a
    # batch and on /predict/file, not 422 with the schema's words
    image_data: str = Field(
        ...,
        description="The encoded image file (JPEG, PNG, ...) in base64; a "
        "'data:image/...;base64,' prefix is accepted.",
    )
    confidence_threshold: float | None = Field(
        None, ge=0.0, le=1.0, strict=True, description=THRESHOLD_HELP)
    return_probabilities: bool = Field(
        True, strict=True, description="Include the probability of every class.")
    neighbours: Neighbours = 0


class BatchPredictRequest(BaseModel):
    """Several images to classify in one call, each base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(..., min_length=1,
                              description="Base64-encoded image files.")
    confidence_threshold: float | None = Field(
        None, ge=0.0, le=1.0, strict=True, description=THRESHOLD_HELP)
    return_probabilities: bool = Field(
        True, strict=True, description="Include the probability of every class.")
    neighbours: Neighbours = 0


class PhotoQuality(BaseModel):
    """The quality of the photo; it never changes the class by itself."""

    ok: bool = Field(..., description="No quality issue was found.")
    issues: list[str] = Field(
        default_factory=list,
        description="Among 'blurry', 'too_dark', 'too_bright' (over-exposed), "
        "'too_small' and 'low_information'.")
    message: str = Field("", description="The issues in a sentence for people, "
                         "or empty.")


class Neighbour(BaseModel):
    """A training photo near the image, in the model's CNN embedding."""

    label: str = Field(..., description="Its class in the training data.")
    similarity: float = Field(
        ..., description="Cosine similarity of the embeddings on the "
        "index's principal axes, 4 decimals: near 1 for the same photo (the part "
        "of an embedding off those axes counts as unlike), lower for less alike "
        "ones.")
    file: str = Field(
        ..., description="Its file, relative to the training data folder "
        "('/' separators); empty for a model that did not record it.")
    thumbnail: str | None = Field(
        None, description="A small JPEG of it (about 112 px), as a "
        "'data:image/jpeg;base64,...' URI; null when the model was trained "
        "without thumbnails (--no-thumbnails).")


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
    neighbours: list[Neighbour] = Field(
        default_factory=list,
        description="The training photos most similar to the image, most "
        "similar first, as many as the request's 'neighbours' asked for; "
        "empty when it asked for none or the model has no embedding index.")
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
    cpu_usage_percent: float = Field(
        description="This worker's CPU use since its previous /health answer "
        "(since it started, for the first), in percent of one core: 250 is two "
        "and a half cores busy, as top counts.")
    predictions_count: int
    average_response_time_ms: float
    counts_scope: str = Field(
        description="'process': the counts are this worker's only; 'all "
        "workers': summed over every worker of the server.")
    worker_pid: int
    model_version: str = Field(
        description="The model that answers now ('unloaded' while starting): "
        "<hybridclf version>+<first 12 hex digits of the model file's SHA-256>.")
    model_loaded_at: str | None = Field(
        description="When that model was loaded or reloaded (UTC, ISO 8601).")
    feedback_enabled: bool = Field(
        description="Whether POST /feedback stores corrections (--feedback-dir).")
    confidence_threshold: float | None = Field(
        None, description="The model's learned confidence threshold: what a "
        "request without 'confidence_threshold' uses (null while starting).")
    classes: list[str] | None = Field(
        None, description="The classes the model answers (besides 'unknown'), "
        "in the order of its probabilities; null while starting.")
    n_classes: int | None = Field(
        None, description="How many: the length of 'classes' (null while "
        "starting).")
    ood_enabled: bool | None = Field(
        None, description="Whether an image unlike any training photo is "
        "answered 'unknown' ('unlike any training photo'): false for a model "
        "without the check or a server started with --no-ood. An answer below "
        "the confidence threshold is 'unknown' ('low confidence') either way. "
        "Null while starting.")


CORRECTION = ("The right class: a plain folder name (no '/', '\\', ':', "
               "'*', '?', '\"', '<', '>', '|' or control character, not "
               "starting with '.', at most 100 characters, not 'unknown'; a class "
               "of the served model may hold any but '/' and '\\'); a new class "
               "is fine.")


class FeedbackRequest(BaseModel):
    """A photo the model got wrong, and its right class."""

    model_config = ConfigDict(extra="forbid")

    image_data: str = Field(
        ..., description="The image file in base64, as sent to /predict.")
    label: str = Field(..., description=CORRECTION)
    predicted_class: str | None = Field(
        None, max_length=200, description="What the model answered.")
    model_version: str | None = Field(
        None, max_length=200,
        description="The model_version of the answer being corrected.")


class FeedbackResponse(BaseModel):
    """Where a correction was stored."""

    success: bool = True
    label: str
    file: str = Field(description="The photo's file inside the feedback "
                      "folder: <label>/<sha256>.<ext>.")
    sha256: str
    new: bool = Field(description="False when this photo was already stored "
                      "under this label (it is stored once).")
    class_photos: int = Field(
        description="The photos stored under this label, this one included: "
        "a new class that only the feedback folder holds is trained on from "
        "its second photo.")
    also_under: list[str] = Field(
        default_factory=list, description="The other labels this same photo "
        "is stored under: a label conflict, which training leaves out (every "
        "copy) until the copy under the wrong label is deleted.")


class ReloadRequest(BaseModel):
    """Which model directory to load; none: the served one's path again."""

    model_config = ConfigDict(extra="forbid")

    model_dir: str | None = Field(
        None, min_length=1,
        description="A model directory on the server; default: the path of "
        "the model that serves now.")


class ReloadResponse(BaseModel):
    """The model that serves after a reload, and the one it replaced."""

    success: bool = True
    model_version: str
    previous_model_version: str
    classes: list[str]
    model_loaded_at: str
    reload_seconds: float
    restarting_workers: bool = Field(
        False, description="True with several workers: the others are being "
        "replaced, one at a time, by workers that load this model (each "
        "worker's /health names the version it serves).")


class ErrorResponse(BaseModel):
    """The body of every error."""

    success: bool = False
    error_message: str
    request_id: str | None = Field(
        default=None, description="The request's X-Request-ID (the client's "
        "when it sent a safe one, else made by the server): quote it when "
        "reporting the error; the server's log lines carry it too.")


#: The error answers every prediction route documents.
ERRORS = {code: {"model": ErrorResponse}
          for code in (400, 401, 408, 413, 415, 422)}
