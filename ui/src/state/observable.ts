//! A minimal observable holder for the app state: `set` replaces the value
//! and tells listeners (the root component), which re-renders once.

export class Store<S> {
  private listeners = new Set<() => void>();

  constructor(private value: S) {}

  get(): S {
    return this.value;
  }

  set(next: S): void {
    if (next === this.value) return;
    this.value = next;
    for (const listener of this.listeners) listener();
  }

  update(change: (current: S) => S): void {
    this.set(change(this.value));
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
