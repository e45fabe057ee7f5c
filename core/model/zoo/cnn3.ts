/** Tutorial §9.5.4 exercise: three convolutions and three fully connected layers. */
import { composite, conv2d, F, linear, maxPool2dLayer } from '../layers/index.ts';

export const cnn3 = () =>
  composite(
    'Net',
    {
      conv1: conv2d(1, 16, 5),
      conv2: conv2d(16, 32, 5),
      conv3: conv2d(32, 64, 3),
      pooling: maxPool2dLayer(2),
      fc1: linear(64, 32),
      fc2: linear(32, 16),
      fc3: linear(16, 10),
    },
    (m, x, ctx) => {
      x = m.pooling(F.relu(ctx, m.conv1(x)));
      x = m.pooling(F.relu(ctx, m.conv2(x)));
      x = m.pooling(F.relu(ctx, m.conv3(x)));
      x = F.flatten(ctx, x);
      x = F.relu(ctx, m.fc1(x));
      x = F.relu(ctx, m.fc2(x));
      return m.fc3(x);
    },
  );
