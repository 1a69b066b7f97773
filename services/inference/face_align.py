"""Face alignment (5-point similarity transform onto a template) and face quality for recognition.

Pure numpy + Pillow; no model is loaded here. Coordinates follow the OpenCV convention the
templates were defined in: pixel (i, j) has its centre at (i, j).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from services.inference.tensors import laplacian_variance as tensor_laplacian_variance

# ArcFace / InsightFace 112x112 template: left eye, right eye, nose tip, left and right mouth
# corners, "left" meaning image-left (the subject's right eye).
_ARCFACE_POINTS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class FaceTemplate:
    """Where the 5 landmarks land in a size x size aligned crop."""

    name: str
    size: int
    points: np.ndarray  # (5, 2) in output pixels

    def scaled(self, size: int, name: str) -> FaceTemplate:
        return FaceTemplate(name=name, size=size, points=self.points * (size / self.size))


ARCFACE_112 = FaceTemplate("arcface_112", 112, _ARCFACE_POINTS)
# FaceNet (InceptionResnetV1) takes 160x160 crops. facenet-pytorch itself crops the MTCNN box
# without rotation; the landmark-aligned equivalent is the ArcFace layout scaled to 160, which keeps
# a future FaceNet export on the same alignment code path.
FACENET_160 = ARCFACE_112.scaled(160, "facenet_160")
TEMPLATES: dict[str, FaceTemplate] = {t.name: t for t in (ARCFACE_112, FACENET_160)}


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, shift) mapping src onto dst.

    Umeyama (1991), without reflection: the closed form used by skimage's SimilarityTransform.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:  # forbid a mirror image
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / n
    scale = float((s * d).sum() / var_src) if var_src > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def align_face(
    image: Image.Image, landmarks_px: np.ndarray, template: FaceTemplate = ARCFACE_112
) -> tuple[Image.Image, np.ndarray]:
    """Warp the face onto the template. Returns the RGB crop and the image->crop 2x3 matrix."""
    matrix = similarity_transform(np.asarray(landmarks_px, dtype=np.float64).reshape(5, 2), template.points)
    # PIL's AFFINE wants the crop->image mapping, in its own convention where a pixel's centre is at
    # +0.5: p_img = A p_crop + t (OpenCV) becomes P_img = A P_crop + t + 0.5 - A @ [0.5, 0.5].
    a = matrix[:, :2]
    a_inv = np.linalg.inv(a)
    t_inv = -a_inv @ matrix[:, 2]
    t_pil = t_inv + 0.5 - a_inv @ np.array([0.5, 0.5])
    coeffs = (a_inv[0, 0], a_inv[0, 1], t_pil[0], a_inv[1, 0], a_inv[1, 1], t_pil[1])
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    crop = rgb.transform(
        (template.size, template.size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    return crop, matrix


# --- quality ------------------------------------------------------------------------------------

# Measured with YuNet + MobileFaceNet on the faces set, each face shrunk to N px and blurred
# (bench/compare_face_detectors.py --quality, bench/reports/face_detectors.md). Faces at or above both
# values were identified right 0.989 of the time, the others 0.75: 20 px faces still score 0.98, 16 px
# 0.96, 12 px 0.85; a Gaussian blur of 2% of the face size (sharpness ~22) costs nothing, 4% (~4.5)
# drops to 0.89. Faces below either are kept and shown, but don't train a person or seed clusters.
MIN_FACE_PX = 20.0
MIN_SHARPNESS = 10.0
# Sharpness is measured on the inner face of the 112 px aligned crop, eyebrows to chin and between
# the outer eye corners (x0, y0, x1, y1): background, hair and the black fill outside a photo's
# border have strong edges of their own that hide a blurred face (AUC for "identified right" 0.90 vs
# 0.78 on the whole crop).
SHARPNESS_REGION = (24, 24, 88, 104)


@dataclass(frozen=True)
class FaceQuality:
    """How usable a detected face is for recognition."""

    size_px: float  # short side of the detector's box, in pixels of the analysed image
    sharpness: float  # variance of the Laplacian over the inner face of the aligned 112 px grey crop
    recognisable: bool


def laplacian_variance(crop: Image.Image | np.ndarray, size: int = 112) -> float:
    """Variance of the 4-neighbour Laplacian over SHARPNESS_REGION of the grey crop resized to size.

    Done on the aligned crop, so the measure covers the face only and is comparable between
    faces: a small face upscaled to the crop is blurred by the upscaling and scores low as well.
    """
    img = crop if isinstance(crop, Image.Image) else Image.fromarray(np.asarray(crop, dtype=np.uint8))
    grey = img.convert("L")
    if grey.size != (size, size):
        grey = grey.resize((size, size), Image.Resampling.BILINEAR)
    x0, y0, x1, y1 = (round(v * size / 112) for v in SHARPNESS_REGION)
    return tensor_laplacian_variance(np.asarray(grey, dtype=np.float32)[y0:y1, x0:x1])


def face_quality(
    size_px: float,
    aligned: Image.Image | np.ndarray,
    min_size_px: float = MIN_FACE_PX,
    min_sharpness: float = MIN_SHARPNESS,
) -> FaceQuality:
    sharpness = laplacian_variance(aligned)
    return FaceQuality(
        size_px=float(size_px),
        sharpness=sharpness,
        recognisable=bool(size_px >= min_size_px and sharpness >= min_sharpness),
    )
