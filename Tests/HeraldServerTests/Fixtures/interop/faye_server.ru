# A real Faye 1.4 server (Debian ruby-faye) for testing Herald's Swift client SDK
# (HeraldClient) against a third-party Bayeux server, over WebSocket and long-polling.
# Started by faye_server.sh (puma, 127.0.0.1 only); endpoint: http://127.0.0.1:PORT/bayeux
#
# No Faye::WebSocket.load_adapter call: faye-websocket 0.11 has adapters only for thin,
# rainbows and goliath; under Puma it takes the socket over through rack.hijack.
require 'faye'

# Same JSON engine as faye_client.rb, so Oj (if installed) cannot mangle numbers.
require 'multi_json'
MultiJson.use(:json_gem)

$stdout.sync = true
$stderr.sync = true

run Faye::RackAdapter.new(mount: '/bayeux', timeout: 25)
