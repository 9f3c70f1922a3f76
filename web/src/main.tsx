// The demo chat page: sign in as a demo user, rooms, messages, typing, presence, receipts,
// translations. Built by build.mjs into gateway/static/app/ (README, "The demo chat").
import { render } from "preact";
import { App } from "./app";
import { Chat } from "./chat";
import "./styles.css";

const chat = new Chat();
render(<App chat={chat} />, document.getElementById("app")!);
void chat.boot();
