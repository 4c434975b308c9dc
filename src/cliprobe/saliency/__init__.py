"""Where the model looks: saliency maps of the zero-shot decision (seed 000's open question).

- :mod:`~cliprobe.saliency.maps`: Grad-CAM (through ``pytorch-grad-cam``) and occlusion
  sensitivity over a :class:`~cliprobe.saliency.maps.ZeroShotHead` (image -> class logits);
- :mod:`~cliprobe.saliency.towers`: which layer Grad-CAM reads on a ViT or a ResNet tower;
- :mod:`~cliprobe.saliency.geometry`: boxes and pixels carried through the model's own
  preprocessing (so a written word's box lands on the right input pixels);
- :mod:`~cliprobe.saliency.mass`: the share of a map's mass inside the word's box.
"""
