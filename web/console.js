// console.js - the console's entry module. A placeholder until the console itself lands:
// it only asks /healthz and says what it answered, to show that modules load under the
// server's Content-Security-Policy (no inline script).
const status = document.getElementById("status");

async function showHealth() {
  try {
    const answer = await fetch("/healthz", { cache: "no-store" });
    const text = (await answer.text()).trim();
    status.textContent = `iotd is ${answer.ok ? "healthy" : "unhealthy"}: ${text}`;
  } catch (error) {
    status.textContent = `iotd cannot be reached: ${error.message}`;
  }
}

showHealth();
