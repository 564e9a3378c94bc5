// Training: corpus and packing, the MTP model, AdamW, the trainer, checkpoints, plots.

import Tensors
