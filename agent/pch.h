// Precompiled header for the LibTorch targets: <torch/torch.h> is by far the costliest include.
#pragma once
#include <torch/torch.h>
