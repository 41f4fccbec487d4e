## The game's own sign-in for tests/clients/sign_in.py, run by tests/godot/gdscript.py: a node
## whose token provider asks the test identity provider (tests/clients/test_idp.py) for the
## player's token over HTTP (an HTTPRequest child, awaited), as a game asks its backend, and
## whose clock is the test's, to reach the refresh margin at once.
extends Node

const GameEvents = preload("../../generated/game_events/clients/godot/addons/contractc_game_events/game_events.gd")

## The test IdP's URL and the player's subject there.
var idp_url := ""
var subject := ""
## The client's clock (ms since the epoch), moved by the test.
var clock_ms := 0
## Every `force_refresh` the client asked with, in order.
var asked: Array[bool] = []
## Why the last ask gave no token ("" when it gave one).
var failure := ""


## The client of game_events, signing in through `provide_token`, a child of this node.
func create_client(base_url: String, state_dir: String) -> Node:
	var client := GameEvents.create_client(
		{
			"base_url": base_url,
			"state_dir": state_dir,
			"token_provider": provide_token,
			"now_ms": now_ms,
		}
	)
	add_child(client)
	return client


func now_ms() -> int:
	return clock_ms


## The game's sign-in: the IdP's token for the player, and its expiry on the client's clock.
func provide_token(force_refresh: bool) -> Dictionary:
	asked.append(force_refresh)
	var http := HTTPRequest.new()
	add_child(http)
	var url := idp_url + "/token?sub=" + subject.uri_encode()
	var started := http.request(url, PackedStringArray(), HTTPClient.METHOD_GET, "")
	if started != OK:
		http.queue_free()
		failure = "cannot ask the IdP: " + error_string(started)
		return {}
	var done: Array = await http.request_completed
	http.queue_free()
	if done[0] != HTTPRequest.RESULT_SUCCESS or done[1] != 200:
		failure = "the IdP answered " + str(done[1]) + " (result " + str(done[0]) + ")"
		return {}
	var decoder := GameEvents.rt.Decoder.new()
	var session: Variant = decoder.parse((done[3] as PackedByteArray).get_string_from_utf8())
	if decoder.error != "" or not session is Dictionary:
		failure = "the IdP's answer is not a JSON object: " + decoder.error
		return {}
	var token: Variant = session.get("access_token")
	var expires_in: Variant = session.get("expires_in")
	if not token is String or not expires_in is GameEvents.rt.JsonNumber:
		failure = "the IdP's answer has no access_token and expires_in"
		return {}
	failure = ""
	return {"token": token, "expires_at_unix": clock_ms / 1000.0 + expires_in.text.to_float()}
