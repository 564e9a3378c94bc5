// Layers: parameters with Hugging Face-style names, forward passes built from
// differentiable tensor ops (their pullbacks give the backward passes).

import Tensors
