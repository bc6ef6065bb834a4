// order-form.js shows a running total under the order form. The form works
// the same without it: the server prices the order.
'use strict';

(() => {
	const form = document.getElementById('order-form');
	const total = document.getElementById('order-total');
	if (!form || !total) return;
	const output = total.querySelector('output');
	const money = (cents) => '€' + Math.floor(cents / 100) + '.' + String(cents % 100).padStart(2, '0');

	function update() {
		let cents = 0;
		for (const item of form.querySelectorAll('.menu-item')) {
			const qty = Number.parseInt(item.querySelector('input').value, 10);
			if (Number.isInteger(qty) && qty > 0) cents += qty * Number(item.dataset.priceCents);
		}
		output.textContent = money(cents);
	}

	form.addEventListener('input', update);
	update();
	total.hidden = false;
})();
