// Pipeline parallelism: microbatching, schedules (GPipe, 1F1B), stage transports.

import Tensors
