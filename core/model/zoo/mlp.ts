/** Tutorial §9.1: the fully connected network 784-512-256-128-64-10. */
import { composite, F, linear } from '../layers/index.ts';

export const mlp = () =>
  composite(
    'Net',
    { l1: linear(784, 512), l2: linear(512, 256), l3: linear(256, 128), l4: linear(128, 64), l5: linear(64, 10) },
    (m, x, ctx) => {
      x = F.flatten(ctx, x); // x.view(-1, 784)
      x = F.relu(ctx, m.l1(x));
      x = F.relu(ctx, m.l2(x));
      x = F.relu(ctx, m.l3(x));
      x = F.relu(ctx, m.l4(x));
      return m.l5(x);
    },
  );
