/**
 * Tutorial §9.7: the residual network and the two variants from "Identity Mappings in Deep Residual
 * Networks" (§9.7.4). The tutorial's variant code computes `y = self.conv2(x)`, throwing conv1's output
 * away — a typo; like the paper, every block here applies conv2 to relu(conv1(x)).
 */
import { composite, conv2d, F, linear, type Module, maxPool2dLayer } from '../layers/index.ts';

export type Shortcut = 'identity' | 'scaled' | 'conv';

/** z = x + y (identity), 0.5·(x + y) (scaled) or conv1×1(x) + y (conv); output relu(z). */
export function residualBlock(channels: number, shortcut: Shortcut = 'identity'): Module {
  const conv = () => conv2d(channels, channels, 3, { padding: 1 });
  const residual = { conv1: conv(), conv2: conv() };
  if (shortcut === 'conv') {
    return composite('ResidualBlock', { ...residual, conv3: conv2d(channels, channels, 1) }, (m, x, ctx) => {
      const y = m.conv2(F.relu(ctx, m.conv1(x)));
      return F.relu(ctx, F.add(ctx, m.conv3(x), y));
    });
  }
  return composite('ResidualBlock', residual, (m, x, ctx) => {
    const y = m.conv2(F.relu(ctx, m.conv1(x)));
    const z = F.add(ctx, x, y);
    return F.relu(ctx, shortcut === 'scaled' ? F.scale(ctx, z, 0.5) : z);
  });
}

export const resnet = (shortcut: Shortcut = 'identity') =>
  composite(
    'Net',
    {
      conv1: conv2d(1, 16, 5),
      conv2: conv2d(16, 32, 5),
      mp: maxPool2dLayer(2),
      rblock1: residualBlock(16, shortcut),
      rblock2: residualBlock(32, shortcut),
      fc: linear(512, 10),
    },
    (m, x, ctx) => {
      x = m.mp(F.relu(ctx, m.conv1(x)));
      x = m.rblock1(x);
      x = m.mp(F.relu(ctx, m.conv2(x)));
      x = m.rblock2(x);
      return m.fc(F.flatten(ctx, x));
    },
  );
