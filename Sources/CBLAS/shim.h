// Private shim: exposes OpenBLAS's CBLAS interface to Swift. Not API.
#pragma once
#include <cblas.h>
