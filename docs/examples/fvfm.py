"""Fv/Fm per plant per night with PlantCV's own PSII analysis, run per group by imagezarr.

    m = imagezarr.scan(folder, **imagezarr.testing.PSII_SCAN)
    imagezarr.map_groups(m, fvfm, by=("barcode", "night"), out="out/fvfm.csv")

or: imagezarr map psii.imagezarr.json fvfm.py:fvfm --by barcode,night -o out/fvfm.csv

One group = one plant on one night: dims (param, frame, y, x). PSII0 is the dark-adapted
measurement; its frames 1, 2, 3 are PlantCV's Fdark, F0, Fm (CropReporter's default order).
"""

import threading

import numpy as np
from plantcv import plantcv as pcv

from imagezarr.plantcv import psii_dataarray

DARK_STEP = "PSII0"
DARK_FRAMES = {1: "Fdark", 2: "F0", 3: "Fm"}  # frame number -> PlantCV frame label
FILL = 50  # pcv.fill: drop specks smaller than this many pixels from the mask
SAMPLE = "plant"  # PlantCV sample label: observations are under "plant_1" (n_labels=1)
# pcv.outputs is one process-wide object: with map_groups(workers=N) (threads) groups would
# clear and read each other's observations, so the PlantCV part runs one group at a time
_PCV = threading.Lock()


def fvfm(group):
    """One plant, one night -> Fv/Fm (median and mean over the plant), its area and its mask."""
    # PlantCV's ojip_dark DataArray: dims (x, y, frame_label, measurement); "x" holds rows
    image = group.image.sel(param=DARK_STEP).load()  # (frame, y, x)
    ps_da = psii_dataarray(image, frame_labels=DARK_FRAMES, name="ojip_dark")

    # plant mask: Otsu threshold on the Fm (max fluorescence) frame, small specks removed
    fm = ps_da.sel(frame_label="Fm", measurement="t0").values  # (rows, cols) uint8
    mask = pcv.threshold.otsu(gray_img=fm, object_type="light")  # 0/255 uint8
    mask = pcv.fill(bin_img=mask, size=FILL)

    # reset PlantCV's global observations per group, analyse, read ours back (under the lock)
    with _PCV:
        pcv.outputs.clear()
        pcv.analyze.yii(ps_da=ps_da, labeled_mask=mask, n_labels=1, label=SAMPLE)
        obs = pcv.outputs.observations[f"{SAMPLE}_1"]
    return {
        "fvfm": obs["yii_median_t0"]["value"],
        "fvfm_mean": obs["yii_mean_t0"]["value"],
        "area": int(np.count_nonzero(mask)),
        "mask": mask,  # (y, x) uint8 0/255 -> a PNG under <out>_images/mask/
    }
