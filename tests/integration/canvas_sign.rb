# tests/integration/canvas_sign.rb - signs an LTI 1.1 launch the way Canvas
# does when the tool's launch URL has a query (its lib/lti/security.rb,
# generate_params_deprecated): each query parameter is copied into the
# launch's parameters unless they have that name already, and the Ruby
# `oauth` gem (Debian's ruby-oauth) signs those parameters alone, with the
# signature in the body, over the URL without its query.
#
# Reads JSON from stdin: {"url", "key", "secret", "params": [[name, value], ...],
# "nonce", "timestamp"}; writes the form body to POST to the full URL.
require "json"
require "uri"
require "cgi"
require "oauth"
require "oauth/consumer"

req = JSON.parse($stdin.read)
uri = URI.parse(req["url"])
host = uri.port == uri.default_port ? uri.host : "#{uri.host}:#{uri.port}"
consumer = OAuth::Consumer.new(req["key"], req["secret"],
                               site: "#{uri.scheme}://#{host}",
                               signature_method: "HMAC-SHA1")
params = {}
req["params"].each { |k, v| params[k] = v }
if uri.query && !uri.query.empty?
  CGI.parse(uri.query).each do |k, values|
    params[k] = values.first unless params[k]
  end
end
path = uri.path.empty? ? "/" : uri.path
options = { scheme: "body", nonce: req["nonce"], timestamp: req["timestamp"].to_s }
request = consumer.create_signed_request(:post, path, nil, options, params)
$stdout.write(request.body)
