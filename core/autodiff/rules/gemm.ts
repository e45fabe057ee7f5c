/**
 * Gemm: Y = α·A'·B' + β·C with A' = transA ? Aᵀ : A and B' likewise. Then dA' = α·dY·B'ᵀ and
 * dB' = α·A'ᵀ·dY; each case below writes that as one Gemm with the right transposes.
 */
import { float, int } from '../../../onnx/attributes.ts';
import { attrFloat, attrInt, dY, type GradientRule, input } from '../rule.ts';
import { unbroadcast } from '../unbroadcast.ts';

export const Gemm: GradientRule = (c) => {
  const [a, b] = [input(c, 0), input(c, 1)];
  const transA = attrInt(c.node, 'transA', 0);
  const transB = attrInt(c.node, 'transB', 0);
  const alpha = attrFloat(c.node, 'alpha', 1);
  const beta = attrFloat(c.node, 'beta', 1);
  const d = dY(c);
  const gemm = (x: string, y: string, tx: number, ty: number) =>
    c.g.op('Gemm', [x, y], { transA: int(tx), transB: int(ty), alpha: float(alpha) });

  let dA: string | undefined;
  let dB: string | undefined;
  if (c.needsGrad[0]) {
    // transA=0: dA = dY·B'ᵀ;  transA=1: dA = (dY·B'ᵀ)ᵀ = B'·dYᵀ
    dA = transA ? gemm(b, d, transB, 1) : gemm(d, b, 0, transB ? 0 : 1);
  }
  if (c.needsGrad[1]) {
    // transB=0: dB = A'ᵀ·dY;  transB=1: dB = (A'ᵀ·dY)ᵀ = dYᵀ·A'
    dB = transB ? gemm(d, a, 1, transA) : gemm(a, d, transA ? 0 : 1, 0);
  }
  let dC: string | undefined;
  const cName = c.node.input[2];
  if (c.needsGrad[2] && cName) {
    const scaled =
      beta === 1
        ? d
        : c.g.op('Mul', [d, c.g.constant({ dataType: 'FLOAT', dims: [], data: Float32Array.of(beta) }, 'beta')]);
    dC = unbroadcast(c.g, scaled, c.g.shapeOf(c.node.output[0] as string), c.g.shapeOf(cName));
  }
  return [dA, dB, dC].slice(0, c.node.input.length); // no C input: no third gradient
};

/** 2-D MatMul: dA = dY·Bᵀ, dB = Aᵀ·dY. */
export const MatMul: GradientRule = (c) => {
  const [a, b] = [input(c, 0), input(c, 1)];
  for (const name of [a, b]) {
    if (c.g.shapeOf(name).length !== 2)
      throw new Error(`MatMul gradient supports 2-D operands only (node '${c.node.name}')`);
  }
  const d = dY(c);
  return [
    c.needsGrad[0] ? c.g.op('Gemm', [d, b], { transB: int(1) }) : undefined,
    c.needsGrad[1] ? c.g.op('Gemm', [a, d], { transA: int(1) }) : undefined,
  ];
};
