"""cliprobe's image <-> text recalls against LAION's CLIP_benchmark, on the same inputs.

Builds a small Flickr-format fixture (40 photos of ../shared/data/imagenet_sample_1000, copied
byte for byte as ``<name>.jpg``, with 3-5 captions each written for this benchmark), saves one
seeded random-weight checkpoint, then runs both tools on it:

- cliprobe: the real pipeline (``dvc repro`` in a throw-away project; dataset kind
  ``captions``, format ``clip_benchmark_txt``; the ``original`` cell's metrics.json);
- CLIP_benchmark: ``clip_benchmark eval --task zeroshot_retrieval --dataset flickr30k
  --annotation_file ... --no_amp`` from its own virtual environment (installed beside the
  project, never copied into it; its amp means bf16 on CPU, hence ``--no_amp``).

It prints both recalls at k = 1, 5, 10 (CLIP_benchmark's ``image_retrieval_recall@k`` is
text -> image, ``text_retrieval_recall@k`` image -> text) and their largest difference, and
exits 1 when that exceeds 1e-6. Without the CLIP_benchmark environment it says so and exits 0.
RANDOM WEIGHTS: the recalls test the definitions, they are not findings.

    python benchmarks/clip_benchmark_retrieval.py [--cb-venv /work/ext/cb-venv] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _shared import IMAGENET_SAMPLE
from cliprobe.devtools import make_project, repro

DEFAULT_VENV = Path("/work/ext/cb-venv")
KS = (1, 5, 10)

#: file stem in imagenet_sample_1000 -> captions written for the fixture (3 to 5 each)
CAPTIONS: dict[str, list[str]] = {
    "n01440764_tench": ["A fisherman holds up a large green tench.",
                        "A freshwater fish caught and shown to the camera.",
                        "Someone proudly displays a tench by a lake."],
    "n01629819_European_fire_salamander": [
        "A black salamander with bright yellow spots.",
        "A fire salamander crawling over damp leaves.",
        "Close-up of a spotted amphibian on the forest floor.",
        "A yellow and black salamander in the wild."],
    "n01698640_American_alligator": ["An alligator resting at the edge of the water.",
                                     "A large reptile with rough dark skin in a swamp.",
                                     "An American alligator basking in the sun."],
    "n01774384_black_widow": ["A black widow spider with a red mark on its body.",
                              "A shiny black spider hanging in its web.",
                              "Macro photo of a venomous spider."],
    "n01860187_black_swan": ["A black swan gliding across a pond.",
                             "A dark bird with a red beak swimming on calm water.",
                             "A graceful black swan near the shore.",
                             "A swan with black feathers floats on a lake.",
                             "Waterfowl on a quiet lake."],
    "n01986214_hermit_crab": ["A hermit crab peeking out of a shell.",
                              "A small crab living in a borrowed spiral shell.",
                              "A crab crawling on sand."],
    "n02077923_sea_lion": ["A sea lion lying on the rocks by the sea.",
                           "A brown marine mammal resting on the beach.",
                           "A sea lion raising its head toward the camera.",
                           "Sea lions sunbathing on a pier."],
    "n02091635_otterhound": ["A shaggy otterhound standing on the grass.",
                             "A large dog with a rough coat looks at the camera.",
                             "A scruffy hound outdoors."],
    "n02097474_Tibetan_terrier": ["A fluffy Tibetan terrier sitting indoors.",
                                  "A small dog with long hair over its eyes.",
                                  "A long-haired terrier posing for a photo."],
    "n02105162_malinois": ["A Belgian malinois standing alert.",
                           "A tan shepherd dog with a black face.",
                           "A working dog on a training field.",
                           "A police dog waiting for a command."],
    "n02110185_Siberian_husky": ["A Siberian husky with blue eyes.",
                                 "A grey and white sled dog in the snow.",
                                 "A husky looking into the distance.",
                                 "A thick-coated dog lying on the ground."],
    "n02116738_African_hunting_dog": ["An African wild dog with a patchy coat.",
                                      "A painted dog standing on the savanna.",
                                      "A wild dog with large round ears."],
    "n02165105_tiger_beetle": ["A metallic green tiger beetle on the sand.",
                               "A small shiny insect with long legs.",
                               "Close-up of a beetle in the sunlight."],
    "n02281406_sulphur_butterfly": ["A yellow butterfly resting on a flower.",
                                    "A sulphur butterfly feeding on nectar.",
                                    "A pale yellow insect with folded wings.",
                                    "A butterfly on a purple bloom."],
    "n02417914_ibex": ["An ibex with long curved horns on a rocky slope.",
                       "A wild mountain goat standing on a cliff.",
                       "An ibex grazing in the mountains."],
    "n02488702_colobus": ["A black and white colobus monkey in a tree.",
                          "A monkey with a long white tail sitting on a branch.",
                          "A colobus looking down from the canopy."],
    "n02669723_academic_gown": ["A graduate wearing a black academic gown.",
                                "A student in a cap and gown on graduation day.",
                                "People in robes at a university ceremony.",
                                "A smiling graduate holding a diploma."],
    "n02793495_barn": ["A red barn in a green field.",
                       "An old wooden farm building under a blue sky.",
                       "A barn with a white fence in the countryside."],
    "n02860847_bobsled": ["A bobsled team racing down an icy track.",
                          "Athletes pushing a bobsleigh at the start.",
                          "A sled speeding through a curve of ice.",
                          "A winter sports race on a frozen track."],
    "n02965783_car_mirror": ["A side mirror of a car reflecting the road.",
                             "A wing mirror showing the traffic behind.",
                             "Close-up of a car's rear-view mirror."],
    "n03042490_cliff_dwelling": ["Ancient stone houses built into a cliff.",
                                 "Ruins of a cliff dwelling under a rock overhang.",
                                 "Old adobe rooms tucked into a canyon wall.",
                                 "A historic pueblo carved into the rock."],
    "n03160309_dam": ["A concrete dam holding back a reservoir.",
                      "Water rushing through the spillway of a dam.",
                      "A large dam across a river valley."],
    "n03297495_espresso_maker": ["A shiny espresso machine on a counter.",
                                 "A coffee maker pouring a shot of espresso.",
                                 "A stainless steel machine for making coffee."],
    "n03445924_golfcart": ["A white golf cart parked on the course.",
                           "A small electric cart on a grassy path.",
                           "Two people riding a golf cart.",
                           "A golf cart next to the green."],
    "n03532672_hook": ["A metal hook hanging on a wall.",
                       "A steel hook with a curved tip.",
                       "Close-up of a hook on a chain."],
    "n03662601_lifeboat": ["An orange lifeboat on the side of a ship.",
                           "A rescue boat heading out to sea.",
                           "A lifeboat moored in a harbour.",
                           "A bright lifeboat on the water."],
    "n03759954_microphone": ["A microphone on a stand in front of a stage.",
                             "A singer holding a microphone.",
                             "A vintage microphone in black and white.",
                             "A mic ready for a performance."],
    "n03796401_moving_van": ["A moving van parked in front of a house.",
                             "A large truck used to move furniture.",
                             "A white van with a company logo on the side."],
    "n03887697_paper_towel": ["A roll of paper towels on a holder.",
                              "Kitchen paper towels next to the sink.",
                              "A white paper towel roll on a counter."],
    "n03950228_pitcher": ["A glass pitcher filled with water.",
                          "A ceramic jug on a wooden table.",
                          "A pitcher of lemonade in the sun.",
                          "A water jug with a handle and spout."],
    "n04033995_quilt": ["A colourful patchwork quilt on a bed.",
                        "A handmade quilt with a star pattern.",
                        "A folded quilt with many fabric squares."],
    "n04136333_sarong": ["A woman wearing a bright sarong on the beach.",
                         "A patterned wrap skirt tied at the waist.",
                         "A batik sarong with floral prints.",
                         "Colourful fabric worn as a skirt."],
    "n04243546_slot": ["A row of slot machines in a casino.",
                       "A gambling machine with flashing lights.",
                       "Someone playing a slot machine.",
                       "Casino machines with spinning reels."],
    "n04326547_stone_wall": ["An old stone wall in the countryside.",
                             "A dry stone wall along a field.",
                             "Moss growing on a wall of grey stones."],
    "n04399382_teddy": ["A brown teddy bear sitting on a shelf.",
                        "A soft toy bear with a ribbon.",
                        "A child's plush bear on a bed.",
                        "A fluffy stuffed animal."],
    "n04487394_trombone": ["A musician playing the trombone.",
                           "A brass trombone resting on a chair.",
                           "A trombone player in a marching band."],
    "n04562935_water_tower": ["A tall water tower above the town.",
                              "A metal water tank on steel legs.",
                              "A water tower against a cloudy sky.",
                              "An old water tower next to a railway."],
    "n07584110_consomme": ["A bowl of clear consomme soup.",
                           "A clear broth served in a white bowl.",
                           "Hot soup with herbs on a table.",
                           "A cup of golden consomme."],
    "n07747607_orange": ["A fresh orange cut in half.",
                         "Ripe oranges in a basket.",
                         "A bright orange fruit on a table."],
    "n09332890_lakeside": ["A calm lake surrounded by trees.",
                           "A wooden dock at the lakeside at sunset.",
                           "Mountains reflected in a quiet lake.",
                           "A lake shore with green hills."],
}


def build_fixture(folder: Path, data: Path) -> tuple[Path, Path, int]:
    """Images (byte copies named ``<stem>.jpg``) and the Flickr-format caption file."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = ["image,caption"]
    for stem, captions in CAPTIONS.items():
        shutil.copyfile(data / f"{stem}.JPEG", images / f"{stem}.jpg")
        lines.extend(f"{stem}.jpg,{caption}" for caption in captions)
    annotation = folder / "flickr30k_test_karpathy.txt"
    annotation.write_text("\n".join(lines) + "\n")
    return images, annotation, len(lines) - 1


def save_checkpoint(path: Path, arch: str, seed: int) -> None:
    """One seeded random-weight open_clip state dict, loaded by both tools."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    torch.save(model.state_dict(), path)


def run_cliprobe(work: Path, images: Path, annotation: Path, checkpoint: Path,
                 arch: str) -> tuple[dict[str, float], float]:
    """Recalls of the original cell from a real ``dvc repro``, and its wall time."""
    project = make_project(work / "project")
    (project / "conf" / "model" / "rand.yaml").write_text(
        f"rand:\n  arch: {arch}\n  pretrained: {checkpoint}\n  precision: fp32\n")
    (project / "conf" / "dataset" / "fixture.yaml").write_text(
        "fixture:\n  source:\n    kind: captions\n    format: clip_benchmark_txt\n"
        f"    captions_file: {annotation}\n    local_dir: {images}\n"
        "  subsample:\n    classes: null\n    per_class: null\n    seed: 0\n")
    started = time.perf_counter()
    repro(project, ["model=rand", "dataset=[fixture]", "manipulation=[]",
                    "embed.num_workers=0", "stats.bootstrap_resamples=200"])
    seconds = time.perf_counter() - started
    cell = json.loads((project / "data" / "cells" / "rand" / "fixture" / "original"
                       / "metrics.json").read_text())
    return {name: cell["metrics"][name]["value"] for name in
            [f"{side}_recall_at_{k}" for side in ("text_to_image", "image_to_text")
             for k in KS]}, seconds


def run_clip_benchmark(venv: Path, work: Path, images: Path, annotation: Path,
                       checkpoint: Path, arch: str) -> tuple[dict[str, float], float]:
    """CLIP_benchmark's retrieval metrics, renamed to cliprobe's names, and its wall time."""
    output = work / "clip_benchmark.json"
    command = [str(venv / "bin" / "clip_benchmark"), "eval", "--dataset", "flickr30k",
               "--task", "zeroshot_retrieval", "--dataset_root", str(images),
               "--annotation_file", str(annotation), "--model", arch,
               "--pretrained", str(checkpoint), "--recall_k", *map(str, KS), "--no_amp",
               "--batch_size", "16", "--num_workers", "0", "--output", str(output)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    metrics = json.loads(output.read_text())["metrics"]
    renamed = {}
    for k in KS:
        renamed[f"text_to_image_recall_at_{k}"] = metrics[f"image_retrieval_recall@{k}"]
        renamed[f"image_to_text_recall_at_{k}"] = metrics[f"text_retrieval_recall@{k}"]
    return renamed, seconds


def main() -> int:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--cb-venv", type=Path, default=DEFAULT_VENV,
                       help="CLIP_benchmark's virtual environment (clip-benchmark installed)")
    parse.add_argument("--work", type=Path, default=None, help="working folder (kept)")
    parse.add_argument("--arch", default="ViT-B-32")
    parse.add_argument("--seed", type=int, default=0)
    parse.add_argument("--data", type=Path, default=IMAGENET_SAMPLE)
    args = parse.parse_args()
    if not (args.cb_venv / "bin" / "clip_benchmark").is_file():
        print(f"skipped: no CLIP_benchmark at {args.cb_venv} (create a venv there and "
              "`pip install clip-benchmark`, or pass --cb-venv)")
        return 0
    if not args.data.is_dir():
        print(f"skipped: {args.data} is not there (../shared/data)")
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="cliprobe-cb-retrieval-"))
    work.mkdir(parents=True, exist_ok=True)
    images, annotation, n_captions = build_fixture(work / "fixture", args.data)
    checkpoint = work / f"{args.arch}-random-seed{args.seed}.pt"
    save_checkpoint(checkpoint, args.arch, args.seed)
    print(f"fixture: {len(CAPTIONS)} images, {n_captions} captions ({work}); "
          f"{args.arch} random weights, seed {args.seed}  [RANDOM WEIGHTS: not findings]")
    ours, our_seconds = run_cliprobe(work, images, annotation, checkpoint, args.arch)
    theirs, their_seconds = run_clip_benchmark(args.cb_venv, work, images, annotation,
                                               checkpoint, args.arch)
    worst = 0.0
    print(f"{'metric':<28} {'cliprobe':>12} {'CLIP_benchmark':>15} {'|diff|':>9}")
    for name, value in ours.items():
        difference = abs(value - theirs[name])
        worst = max(worst, difference)
        print(f"{name:<28} {value:>12.9f} {theirs[name]:>15.9f} {difference:>9.2g}")
    print(f"largest |difference|: {worst:.3g} (tolerance 1e-6); wall time: cliprobe "
          f"{our_seconds:.0f} s (whole pipeline), CLIP_benchmark {their_seconds:.0f} s")
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
