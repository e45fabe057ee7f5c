/** The gradient table: one rule per ONNX op type the layers emit (tinygrad-style). */
import type { GradientRule } from '../rule.ts';
import { BatchNormalization } from './batchnorm.ts';
import { Conv } from './conv.ts';
import { Add, Identity, Mul, Relu, Sub, Sum } from './elementwise.ts';
import { Gemm, MatMul } from './gemm.ts';
import { AveragePool, MaxPool } from './pooling.ts';
import { Concat, Flatten, Reshape } from './shape.ts';
import { Softmax } from './softmax.ts';

export const gradientRules: Record<string, GradientRule> = {
  Add,
  AveragePool,
  BatchNormalization,
  Concat,
  Conv,
  Flatten,
  Gemm,
  Identity,
  MatMul,
  MaxPool,
  Mul,
  Relu,
  Reshape,
  Softmax,
  Sub,
  Sum,
};
