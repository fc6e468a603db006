#!/bin/bash
cd "$(dirname "$0")/../.."  # the repository root
benchmarks/hcv_s14/eval_forget.sh runs/hcv-s13/tf-w8-s0 tf-w8-s0
benchmarks/hcv_s14/eval_forget.sh runs/hcv-s11/tf-w8-s1 tf-w8-s1
benchmarks/hcv_s14/eval_forget.sh runs/hcv-s12/tf-w8-s2 tf-w8-s2
benchmarks/hcv_s14/eval_forget.sh runs/hcv-s11/mlp-s1 mlp-s1
benchmarks/hcv_s14/eval_forget.sh runs/hcv-s12/mlp-w8-s2 mlp-w8-s2
echo done
