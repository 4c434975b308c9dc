"""Which images of a cell get saliency maps, and for which two classes.

Per image (a *subject*): the true object's class, and a second class: the written word's
class when a word is on the image and the classifier knows it (role ``word``), else the
strongest other class on the subject (role ``competitor``). The *reference* view: the clean
image for a manipulated cell; for the ``original`` cell of real typographic photos, the photo
of the same object with no label (``condition == clean``), when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cliprobe.seeding import derive_seed


@dataclass(frozen=True)
class Subject:
    """One image to explain."""

    image_id: str
    label: str
    second_class: str | None
    second_role: str
    reference_id: str | None
    word_box: tuple[float, float, float, float] | None


def choose_subjects(
    image_ids: list[str], labels: list[str], infos: list[dict], logits: np.ndarray,
    class_names: list[str], manifest: pd.DataFrame, is_original: bool,
    max_images: int | None, seed: int, cell_key: str,
) -> list[Subject]:
    """The cell's subjects, a seeded random subset of ``max_images`` (ids in file order).

    Images whose label is not a class of the classifier (a caption dataset's) are left out.

    ``logits`` ``(N, C)``: the zero-shot logits of the cell's stored embeddings, for the
    competitor class. Real typographic photos (a ``condition`` column) are subjects when
    something is written on them; their clean photos serve as references.
    """
    index = {name: i for i, name in enumerate(class_names)}
    by_id = manifest.set_index(manifest["image_id"].astype(str))
    has_words = "word_label" in manifest.columns
    blank_of: dict[str, str] = {}
    if is_original and "condition" in manifest.columns:
        for row in manifest[manifest["condition"] == "clean"].itertuples():
            blank_of.setdefault(str(row.label), str(row.image_id))
    subjects = []
    for row, (image_id, label, info) in enumerate(zip(image_ids, labels, infos, strict=True)):
        if label not in index:
            continue  # no object class to explain (a caption dataset's images have none)
        word = info.get("word_label")
        if not word and has_words and image_id in by_id.index:
            value = by_id.loc[image_id, "word_label"]
            word = value if isinstance(value, str) and value else None
        if is_original and blank_of and not word:
            continue  # a clean photo: the reference of the others, not a subject
        if word and word != label and word in index:
            second, role = word, "word"
        else:
            order = np.argsort(-logits[row], kind="stable")
            others = [class_names[i] for i in order if class_names[i] != label]
            second, role = (others[0], "competitor") if others else (None, "")
        reference = image_id if not is_original else blank_of.get(label)
        box = info.get("word_box")
        subjects.append(Subject(image_id, label, second, role, reference,
                                tuple(float(v) for v in box) if box else None))
    if max_images is not None and len(subjects) > max_images:
        rng = np.random.default_rng(derive_seed(seed, cell_key, "saliency"))
        keep = np.sort(rng.choice(len(subjects), size=max_images, replace=False))
        subjects = [subjects[i] for i in keep]
    return subjects
