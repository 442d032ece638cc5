"""nnU-Net's own planning, preprocessing and trainer on a tiny synthetic dataset, with blocks' twin in the plan.

    python tests/scripts/nnunet_trainer.py FOLDER

Run by tests/test_nnunet.py (``slow``, with the ``nnunet`` extra) in a fresh process, since nnU-Net reads
its folders from the environment when first imported. Offline: the data are made here. Prints ``TRAINED``
when nnU-Net's trainer has trained the twin and written its checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def make_dataset(raw: Path, cases: int = 5) -> None:
    """A box in noise, ``cases`` volumes of 20 x 24 x 24, in nnU-Net's raw layout (5: its 5-fold split)."""
    import numpy as np
    import SimpleITK as sitk

    (raw / "imagesTr").mkdir(parents=True, exist_ok=True)
    (raw / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for case in range(cases):
        label = np.zeros((20, 24, 24), np.uint8)
        z, y, x = rng.integers(6, 14, 3)
        label[z - 4:z + 4, y - 5:y + 5, x - 5:x + 5] = 1
        image = (label * 2.0 + rng.normal(0, 0.5, label.shape)).astype(np.float32)
        sitk.WriteImage(sitk.GetImageFromArray(image), str(raw / "imagesTr" / f"case{case}_0000.nii.gz"))
        sitk.WriteImage(sitk.GetImageFromArray(label), str(raw / "labelsTr" / f"case{case}.nii.gz"))
    dataset = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "box": 1}, "numTraining": cases,
               "file_ending": ".nii.gz"}
    (raw / "dataset.json").write_text(json.dumps(dataset))


def main(root: Path) -> None:
    """Plan and preprocess with nnU-Net, name the twin in the plan, train 3 iterations with nnU-Net's trainer."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[name] = str(root / name)
        (root / name).mkdir(parents=True, exist_ok=True)
    os.environ["nnUNet_n_proc_DA"] = "1"  # the planner sets torch's threads to it
    make_dataset(root / "nnUNet_raw" / "Dataset999_Tiny")
    planner = Path(sys.executable).parent / "nnUNetv2_plan_and_preprocess"
    subprocess.run([str(planner), "-d", "999", "-c", "3d_fullres", "-np", "1", "-npfp", "1"], check=True)
    plans_file = root / "nnUNet_preprocessed" / "Dataset999_Tiny" / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] = "blocks.nnunet.PlainConvUNet"
    plans_file.write_text(json.dumps(plans, indent=1))

    os.environ["nnUNet_n_proc_DA"] = "0"  # augmentation in this process: no workers
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    from blocks.nnunet import PlainConvUNet

    trainer = get_trainer_from_args("999", "3d_fullres", 0, "nnUNetTrainer", "nnUNetPlans", device=torch.device("cpu"))
    trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch = 1, 3, 1
    trainer.run_training()
    assert type(trainer.network) is PlainConvUNet, type(trainer.network)
    folder = root / "nnUNet_results" / "Dataset999_Tiny" / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    assert (folder / "checkpoint_final.pth").is_file()
    print("TRAINED")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
