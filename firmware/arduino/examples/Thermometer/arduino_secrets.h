/* arduino_secrets.h - this device's provisioning data: fill in before uploading, never commit
 * real values. DEVICE_KEY is the 64 hex digits `iotctl device add <id> --type thermo` printed
 * once (secret: ...). */
#define SECRET_WIFI_SSID  "my-network"
#define SECRET_WIFI_PASS  "my-password"
#define SECRET_DEVICE_ID  "thermo-1"
#define SECRET_DEVICE_KEY "0000000000000000000000000000000000000000000000000000000000000000"
/* iotd's device listener; a cluster lists every node (device.addServer once per node). */
#define SECRET_SERVER_1    "iotd-a.example.com"
#define SECRET_SERVER_2    "iotd-b.example.com"
#define SECRET_SERVER_PORT 7011
