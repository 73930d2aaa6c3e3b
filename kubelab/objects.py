"""Small readers of Kubernetes objects' JSON that graders and notebook views share."""

from __future__ import annotations

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def image_tag(image: str) -> str:
    """Return the tag of an image reference ("latest" when it has none, the digest when pinned)."""
    if "@" in image:
        return image.split("@", 1)[1]
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"
