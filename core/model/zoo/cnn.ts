/** Tutorial §9.5: the simple CNN — two 5×5 convolutions, each followed by 2×2 max-pooling and ReLU. */
import { composite, conv2d, F, linear, maxPool2dLayer } from '../layers/index.ts';

export const cnn = () =>
  composite(
    'Net',
    { conv1: conv2d(1, 10, 5), conv2: conv2d(10, 20, 5), pooling: maxPool2dLayer(2), fc: linear(320, 10) },
    (m, x, ctx) => {
      x = F.relu(ctx, m.pooling(m.conv1(x)));
      x = F.relu(ctx, m.pooling(m.conv2(x)));
      return m.fc(F.flatten(ctx, x));
    },
  );
