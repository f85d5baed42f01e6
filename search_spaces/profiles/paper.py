"""``paper``: the published protocol (docs/method.md §8), for GPUs.

SGD with Nesterov momentum 0.9, weight decay 5e-4, learning rate 0.002 × 0.9 every 4 epochs,
ImageNet weights through timm's hub cache (``pretrained=imagenet``), 224 px input.
RAF-DB: 100 epochs, batch 32; AffectNet: 20 epochs, batch 224. ResNet-50 for the CNN methods,
DeiT-S for TS-CAM, IR-50 at 112 px for APViT (docs/method.md §6). IR-50 has no ImageNet
weights in timm's hub: APViT starts from random weights unless ``--set pretrained=FILE``.
"""

from __future__ import annotations

from search_spaces.profiles import Profile, SplitSizes, register

PROFILE = register(Profile(
    name="paper",
    description="published protocol: ResNet-50, 224 px, ImageNet weights, SGD 0.002; "
                "RAF-DB 100 epochs × batch 32, AffectNet 20 epochs × batch 224",
    fields={
        "backbone": "resnet50",
        "img_size": 224,
        "output_stride": 32,
        "pretrained": "imagenet",
        "lr": 0.002,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.0005,
        "lr_step": 4,
        "lr_gamma": 0.9,
    },
    datasets={
        "rafdb": {"epochs": 100, "batch_size": 32},
        "affectnet": {"epochs": 20, "batch_size": 224},
    },
    networks={
        "tscam": {"backbone": "deit_small_patch16_224", "layers": "12", "output_stride": 32},
        "apvit": {"backbone": "ir50", "layers": "3", "output_stride": 32, "img_size": 112,
                  "pretrained": None},
    },
    split_sizes={  # docs/method.md §9
        "rafdb": SplitSizes(12_271, 3_068),
        "affectnet": SplitSizes(283_901, 3_500),
    },
))
