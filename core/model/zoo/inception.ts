/**
 * Tutorial §9.6: GoogLeNet-style InceptionA blocks. Each block outputs 16 + 24 + 24 + 24 = 88 channels;
 * after the second block the 88×4×4 map flattens to the fc layer's 1408 inputs.
 */
import { composite, conv2d, F, linear, maxPool2dLayer } from '../layers/index.ts';

export const inceptionA = (inChannels: number) =>
  composite(
    'InceptionA',
    {
      branch1x1: conv2d(inChannels, 16, 1),
      branch5x5_1: conv2d(inChannels, 16, 1),
      branch5x5_2: conv2d(16, 24, 5, { padding: 2 }),
      branch3x3_1: conv2d(inChannels, 16, 1),
      branch3x3_2: conv2d(16, 24, 3, { padding: 1 }),
      branch3x3_3: conv2d(24, 24, 3, { padding: 1 }),
      branch_pool: conv2d(inChannels, 24, 1),
    },
    (m, x, ctx) => {
      const branch1x1 = m.branch1x1(x);
      const branch5x5 = m.branch5x5_2(m.branch5x5_1(x));
      const branch3x3 = m.branch3x3_3(m.branch3x3_2(m.branch3x3_1(x)));
      const branchPool = m.branch_pool(F.avgPool2d(ctx, x, 3, { stride: 1, padding: 1 }));
      return F.concat(ctx, [branch1x1, branch5x5, branch3x3, branchPool]);
    },
  );

export const inception = () =>
  composite(
    'Net',
    {
      conv1: conv2d(1, 10, 5),
      conv2: conv2d(88, 20, 5),
      incep1: inceptionA(10),
      incep2: inceptionA(20),
      mp: maxPool2dLayer(2),
      fc: linear(1408, 10),
    },
    (m, x, ctx) => {
      x = F.relu(ctx, m.mp(m.conv1(x)));
      x = m.incep1(x);
      x = F.relu(ctx, m.mp(m.conv2(x)));
      x = m.incep2(x);
      return m.fc(F.flatten(ctx, x));
    },
  );
