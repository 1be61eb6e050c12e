"""The tiny BigGAN-deep configuration that stands in for the published ones in tests: with
random weights (``biggan.random_state_dict(TINY, seed=…)``) it draws 32² in milliseconds."""

from ganclip.generators.biggan import BigGANConfig

# 4→8→16→32 with same-size blocks between, ending in an upsampling block like the published
# configs; attention before block 2 (at 8², 16 channels)
TINY = BigGANConfig(output_dim=32, channel_width=4, attention_layer_position=2,
                    layers=((True, 16, 8), (False, 8, 4), (True, 4, 4), (False, 4, 2),
                            (True, 2, 1)))
