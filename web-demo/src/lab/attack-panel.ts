/**
 * Adversarial digits: FGSM or PGD on the pad's digit, untargeted or toward a chosen digit, at the ε of the
 * slider or the smallest ε that changes the answer; shows the perturbed image, the perturbation, and
 * hands the perturbed image to the pad (and so to the explainer and "Why this answer?").
 */
import type { AttackMethod } from '../../../core/explain-gradients/adversarial.ts';
import type { ModelEntry } from '../models.ts';
import { type GradientsClient, modelKey } from './gradients-client.ts';
import type { AttackOutcome } from './gradients-protocol.ts';
import { drawDifference, drawImage } from './heat.ts';

/** What tests and curious users can read back (`window.demo.attack`). */
export interface AttackState {
  running: boolean;
  model?: string;
  /** What the model read on the clean digit. */
  label?: number;
  target?: number;
  result?: Omit<AttackOutcome, 'image'> & { image: number[]; mode: 'at' | 'smallest' };
  /** A search found no ε up to its limit. */
  none?: boolean;
  ms?: number;
  error?: string;
}

export interface AttackHooks {
  /** The selected model, and the pad's digit with its reading (undefined when the pad is empty). */
  current(): { model: ModelEntry; input: Float32Array; prediction: number } | undefined;
  /** Load a 28×28 raw [0, 1] image into the pad (read exactly as it is). */
  pick(pixels: Float32Array): void;
}

/** The largest ε the slider offers and a search tries (pixel units: half of full brightness). */
const MAX_EPSILON = 0.5;

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = '') => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
};

export class AttackPanel {
  readonly state: AttackState = { running: false };
  private readonly method = el('select');
  private readonly target = el('select');
  private readonly epsilon = el('input');
  private readonly epsilonText = el('output');
  private readonly runButton = el('button', '', 'Attack at ε');
  private readonly searchButton = el('button', '', 'Find the smallest ε');
  private readonly explainButton = el('button', '', 'Explain the attacked digit');
  private readonly status = el('p', 'status');
  private readonly image = el('canvas');
  private readonly diff = el('canvas');
  private readonly figures = el('div', 'attack-figures');
  private attacked?: Float32Array;

  constructor(
    root: HTMLElement,
    private readonly client: GradientsClient,
    private readonly hooks: AttackHooks,
  ) {
    this.method.id = 'attack-method';
    this.method.append(new Option('FGSM (one step)', 'fgsm'), new Option('PGD (20 steps)', 'pgd'));
    this.target.id = 'attack-target';
    this.target.append(new Option('any other digit', ''));
    for (let d = 0; d < 10; d++) this.target.append(new Option(`a ${d}`, String(d)));
    Object.assign(this.epsilon, {
      id: 'attack-epsilon',
      type: 'range',
      min: '0',
      max: String(MAX_EPSILON),
      step: '0.005',
      value: '0.1',
    });
    this.epsilonText.id = 'attack-epsilon-value';
    const showEpsilon = () => {
      this.epsilonText.textContent = Number(this.epsilon.value).toFixed(3);
    };
    showEpsilon();
    this.epsilon.addEventListener('input', showEpsilon);
    for (const [b, id] of [
      [this.runButton, 'attack-run'],
      [this.searchButton, 'attack-search'],
      [this.explainButton, 'attack-explain'],
    ] as const) {
      b.type = 'button';
      b.id = id;
    }
    this.explainButton.hidden = true;
    this.image.id = 'attack-image';
    this.diff.id = 'attack-diff';
    const figure = (canvas: HTMLCanvasElement, caption: string) => {
      const f = el('figure');
      f.append(canvas, el('figcaption', '', caption));
      return f;
    };
    this.figures.append(figure(this.image, 'attacked digit'), figure(this.diff, 'perturbation (red +, blue −)'));
    this.figures.hidden = true;
    this.status.id = 'attack-status';
    this.status.setAttribute('aria-live', 'polite');

    const label = (text: string, control: HTMLElement, ...more: HTMLElement[]) => {
      const l = el('label', '', text);
      l.append(control, ...more);
      return l;
    };
    const controls = el('div', 'tools');
    controls.append(
      label('Method ', this.method),
      label('Toward ', this.target),
      label('ε ', this.epsilon, this.epsilonText),
      this.runButton,
      this.searchButton,
    );
    root.append(
      el('h2', '', 'Adversarial digits'),
      el(
        'p',
        'sub',
        'Move every pixel of your digit by at most ε (of full brightness) along the gradient of the loss, so the model reads another digit: FGSM takes one step, PGD 20 smaller ones. The gradient is the model file differentiated by our own rules, in a worker.',
      ),
      controls,
      this.status,
      this.figures,
      this.explainButton,
    );
    this.runButton.addEventListener('click', () => void this.run('at'));
    this.searchButton.addEventListener('click', () => void this.run('smallest'));
    this.explainButton.addEventListener('click', () => {
      if (this.attacked) this.hooks.pick(this.attacked.slice());
    });
  }

  /** Another model is selected: the last attack was on the old one, so it goes. */
  modelChanged(): void {
    this.attacked = undefined;
    Object.assign(this.state, { result: undefined, none: false, error: undefined, model: undefined });
    this.figures.hidden = this.explainButton.hidden = true;
    this.status.textContent = '';
  }

  private async run(mode: 'at' | 'smallest'): Promise<void> {
    const current = this.hooks.current();
    if (!current) {
      this.status.textContent = 'Draw a digit first.';
      return;
    }
    const { model, input, prediction } = current;
    const method = this.method.value as AttackMethod;
    const target = this.target.value === '' ? undefined : Number(this.target.value);
    if (target === prediction) {
      this.status.textContent = `The model already reads a ${target}.`;
      return;
    }
    const epsilon = mode === 'smallest' ? MAX_EPSILON : Number(this.epsilon.value);
    Object.assign(this.state, {
      running: true,
      model: modelKey(model),
      label: prediction,
      target,
      result: undefined,
      none: false,
      error: undefined,
    });
    this.runButton.disabled = this.searchButton.disabled = true;
    this.status.textContent = mode === 'smallest' ? `Searching ε with ${method.toUpperCase()}…` : 'Attacking…';
    try {
      const reply = await this.client.attack(model, {
        pixels: input.slice(),
        method,
        label: prediction,
        ...(target === undefined ? {} : { target }),
        mode,
        epsilon,
      });
      this.state.ms = reply.ms;
      this.show(input, prediction, target, mode, reply.outcome, reply.ms);
    } catch (error) {
      this.state.error = (error as Error).message;
      this.status.textContent = `Error: ${this.state.error}`;
    } finally {
      this.state.running = false;
      this.runButton.disabled = this.searchButton.disabled = false;
    }
  }

  private show(
    input: Float32Array,
    label: number,
    target: number | undefined,
    mode: 'at' | 'smallest',
    outcome: AttackOutcome | undefined,
    ms: number,
  ): void {
    const goal = target === undefined ? 'another digit' : `a ${target}`;
    const name = this.method.value.toUpperCase();
    if (!outcome) {
      this.state.none = true;
      this.figures.hidden = this.explainButton.hidden = true;
      this.status.textContent = `${name} found no ε up to ${MAX_EPSILON} that makes this ${label} read as ${goal}.`;
      return;
    }
    this.attacked = outcome.image;
    this.state.result = { ...outcome, image: Array.from(outcome.image), mode };
    if (mode === 'smallest') this.epsilon.value = String(outcome.epsilon);
    this.epsilonText.textContent = outcome.epsilon.toFixed(3);
    drawImage(this.image, outcome.image);
    drawDifference(
      this.diff,
      outcome.image.map((v, i) => v - (input[i] as number)),
      outcome.epsilon,
    );
    this.figures.hidden = false;
    this.explainButton.hidden = false;
    const p = `${(100 * (outcome.probabilities[outcome.prediction] ?? 0)).toFixed(0)}%`;
    const cost = `${outcome.gradientRuns} gradient run${outcome.gradientRuns === 1 ? '' : 's'}, ${ms.toFixed(0)} ms`;
    this.status.textContent =
      mode === 'smallest'
        ? `${name}: the smallest ε that makes this ${label} read as ${goal} is ${outcome.epsilon.toFixed(5)} (at ${outcome.failedAt?.toFixed(5)} ${target === undefined ? `it still reads ${label}` : `it does not read ${target} yet`}): now it reads ${outcome.prediction} (${p}). ${cost}.`
        : `${name} at ε = ${outcome.epsilon.toFixed(3)}: the ${label} now reads ${outcome.prediction} (${p})${outcome.flipped ? '' : ` — not ${goal} yet`}. ${cost}.`;
  }
}
