import { describe, expect, it } from 'vitest';
import { renderTemplate, TemplateError } from '../../dist/runtime/engine/index.js';

const root = {
  input: {
    currency: 'EUR',
    items: [
      { sku: 'a', qty: 2 },
      { sku: 'b', qty: 1 },
    ],
  },
  run: { input: { order_id: 'o-7', note: null } },
  steps: { price: { total_cents: 2698, parts: { vat: 450 } } },
};

describe('renderTemplate', () => {
  it('keeps the type of a whole-string path and reads nested names and indexes', () => {
    expect(
      renderTemplate(
        {
          total: '{{ steps.price.total_cents }}',
          parts: '{{steps.price.parts}}',
          sku: '{{ input.items[1].sku }}',
          n: 3,
          list: ['{{ run.input.order_id }}', true],
        },
        root,
      ),
    ).toEqual({ total: 2698, parts: { vat: 450 }, sku: 'b', n: 3, list: ['o-7', true] });
  });

  it('interpolates inside longer strings, objects as JSON and missing as empty', () => {
    expect(renderTemplate('Order {{ run.input.order_id }}: {{ steps.price.parts }} {{ nope.x }}!', root)).toBe('Order o-7: {"vat":450} !');
  });

  it('gives null for a missing whole-string path, and the default when one is set', () => {
    expect(renderTemplate('{{ steps.nothing.here }}', root)).toBeNull();
    expect(renderTemplate('{{ run.input.note | default: "none" }}', root)).toBe('none');
    expect(renderTemplate('{{ input.items[9] | default: 0 }}', root)).toBe(0);
  });

  it("reads own properties only: nothing from the prototype (an array's length is its own)", () => {
    expect(renderTemplate('{{ input.constructor }}', root)).toBeNull();
    expect(renderTemplate('{{ input.__proto__ }}', root)).toBeNull();
    expect(renderTemplate('{{ input.currency.toString }}', root)).toBeNull();
    expect(renderTemplate('{{ input.items.length }}', root)).toBe(2);
  });

  it('percent-encodes with the url filter, after a default', () => {
    const r = { input: { id: 'a/b c?&', n: 7, none: null } };
    expect(renderTemplate('https://x.test/orders/{{ input.id | url }}?n={{ input.n | url }}', r)).toBe(
      'https://x.test/orders/a%2Fb%20c%3F%26?n=7',
    );
    expect(renderTemplate('{{ input.none | default: "zz z" | url }}', r)).toBe('zz%20z');
    expect(renderTemplate('{{ input.missing | url }}', r)).toBe(null);
  });

  it('refuses what is not a path or a known filter, with a clear message', () => {
    expect(() => renderTemplate('{{ input.a + 1 }}', root)).toThrow(TemplateError);
    expect(() => renderTemplate('{{ input.a + 1 }}', root)).toThrow(/is not a path/);
    expect(() => renderTemplate('{{ input.currency | upper }}', root)).toThrow(/unknown filter "upper"/);
    expect(() => renderTemplate('{{ input.x | default: nope }}', root)).toThrow(/JSON literal/);
  });
});
