/**
 * A small DenseNet for MNIST, our own design after Huang et al., "Densely Connected Convolutional
 * Networks" (the paper the tutorial names): each layer is BN-ReLU-Conv3×3 producing `growth` new
 * channels that are concatenated onto everything before it; transitions (BN-ReLU-Conv1×1 halving the
 * channels, then 2×2 average pooling) shrink the map between blocks; global average pooling before the
 * classifier. 16 → 52 channels at 14×14, 26 → 62 at 7×7.
 */
import { avgPool2dLayer, batchNorm2d, composite, conv2d, F, linear, type Module, sequential } from '../layers/index.ts';

const GROWTH = 12;
const LAYERS_PER_BLOCK = 3;

const denseLayer = (inChannels: number) =>
  composite(
    'DenseLayer',
    { norm: batchNorm2d(inChannels), conv: conv2d(inChannels, GROWTH, 3, { padding: 1, bias: false }) },
    (m, x, ctx) => F.concat(ctx, [x, m.conv(F.relu(ctx, m.norm(x)))]),
  );

const denseBlock = (inChannels: number): Module =>
  sequential(Array.from({ length: LAYERS_PER_BLOCK }, (_, i) => denseLayer(inChannels + i * GROWTH)));

const transition = (inChannels: number, outChannels: number) =>
  composite(
    'Transition',
    {
      norm: batchNorm2d(inChannels),
      conv: conv2d(inChannels, outChannels, 1, { bias: false }),
      pool: avgPool2dLayer(2),
    },
    (m, x, ctx) => m.pool(m.conv(F.relu(ctx, m.norm(x)))),
  );

export const densenet = () => {
  const stem = 16;
  const afterBlock1 = stem + LAYERS_PER_BLOCK * GROWTH; // 52
  const afterTransition = afterBlock1 / 2; // 26
  const afterBlock2 = afterTransition + LAYERS_PER_BLOCK * GROWTH; // 62
  return composite(
    'DenseNet',
    {
      conv0: conv2d(1, stem, 3, { padding: 1, bias: false }),
      norm0: batchNorm2d(stem),
      block1: denseBlock(stem),
      transition1: transition(afterBlock1, afterTransition),
      block2: denseBlock(afterTransition),
      norm_final: batchNorm2d(afterBlock2),
      fc: linear(afterBlock2, 10),
    },
    (m, x, ctx) => {
      x = F.maxPool2d(ctx, F.relu(ctx, m.norm0(m.conv0(x))), 2); // 16×14×14
      x = m.transition1(m.block1(x)); // 26×7×7
      x = F.relu(ctx, m.norm_final(m.block2(x))); // 62×7×7
      x = F.avgPool2d(ctx, x, 7); // global average pooling → 62×1×1
      return m.fc(F.flatten(ctx, x));
    },
  );
};
