"""The sample photos on `/` (CC BY 2.0, from the COCO 2017 set; files in `assets/samples/`), each with
the attribution its licence asks for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "samples"
LICENCE_URL = "https://creativecommons.org/licenses/by/2.0/"


@dataclass(frozen=True)
class Sample:
    name: str  # what the visitor sees and the file name the upload gets
    file: str
    flickr_id: str
    photo_page: str

    @property
    def url(self) -> str:
        return f"/samples/{self.file}"

    @property
    def attribution(self) -> str:
        return f"Flickr photo {self.flickr_id}, via COCO 2017; CC BY 2.0"


SAMPLES: tuple[Sample, ...] = (
    Sample("cat.jpg", "animal-cat-coco000000196393.jpg", "4219532718", "https://flic.kr/p/7qSd57"),
    Sample("dog.jpg", "animal-dog-coco000000377575.jpg", "3937557668", "https://flic.kr/p/6ZX1Hj"),
    Sample("giraffe.jpg", "animal-giraffe-coco000000000072.jpg", "8352611405", "https://flic.kr/p/dJ6jnt"),
    Sample("teddy-bear.jpg", "object-teddy_bear-coco000000000309.jpg", "5083164728", "https://flic.kr/p/8KbxMb"),
)


def sample_named(name: str) -> Sample | None:
    return next((sample for sample in SAMPLES if sample.name == name), None)
